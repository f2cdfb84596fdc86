"""FLOPs a network costs, COUNTED by TensorFlow's profiler (``float_operation``) on the traced graph
of a concrete function: the CPU-independent measure of training cost (``cost.train_tflop``).

The profiler's registry counts 2 per multiply-add for Conv2D, its two backprops and MatMul (FLOP =
2 x multiply-adds), and 1 per element for the element-wise ops it knows (BiasAdd, Add, Mul, Rsqrt,
pooling, ...); ops it has no entry for (FusedBatchNorm*, the image warps of augmentation, Relu,
casts) count 0, and :func:`graph_flops` says which op types were counted. Nothing is run: the
functions are traced, so the model's variables, optimizer and random generators are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlopCount:
    total: int  # FLOPs of one call of the function (the whole batch)
    by_op: dict[str, int]  # op type -> FLOPs, only the op types the profiler counted (> 0)


def graph_flops(graph) -> FlopCount:
    """FLOPs of one run of ``graph`` (a ``tf.Graph`` whose shapes are all known), by TensorFlow's
    profiler, per op type."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()
                                               ).with_empty_output().build()
    info = model_analyzer.profile(graph, cmd="op", options=opts)
    by_op, nodes = {}, list(info.children)
    while nodes:  # the "op" view nests op types as a chain: each node's own count is float_ops
        node = nodes.pop()
        if node.float_ops:
            by_op[node.name] = by_op.get(node.name, 0) + int(node.float_ops)
        nodes.extend(node.children)
    return FlopCount(int(info.total_float_ops), dict(sorted(by_op.items(), key=lambda kv: -kv[1])))


def _input_spec(model, batch: int):
    import tensorflow as tf

    return tf.TensorSpec((batch, *model.input_shape[1:]), model.inputs[0].dtype)


def forward_flops(model, batch: int = 1) -> FlopCount:
    """FLOPs of ``model``'s inference forward pass on ``batch`` images (augmentation inactive)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    return graph_flops(fn.get_concrete_function(_input_spec(model, batch)).graph)


def train_step_flops(model, batch: int) -> FlopCount:
    """FLOPs of one Keras training step of a compiled ``model`` on ``batch`` images: forward in
    training mode (augmentation, dropout), losses, gradients and the optimizer's update (counted
    once per step, so per image it is shared by the batch). Traced on zero targets shaped like the
    model's outputs; the variables and the optimizer are left untouched (nothing is run)."""
    import tensorflow as tf

    model.optimizer.build(model.trainable_variables)  # no variable may be created while tracing
    specs = [tf.TensorSpec((batch, *shape[1:]), tf.float32) for shape in _output_shapes(model)]
    if isinstance(model.output, dict):  # targets shaped like the outputs: a dict, or one tensor
        y = dict(zip(model.output, specs, strict=True))
    else:
        y = specs[0] if len(specs) == 1 else specs
    fn = tf.function(lambda x, y: model.train_step((x, y)))
    return graph_flops(fn.get_concrete_function(_input_spec(model, batch), y).graph)


def _output_shapes(model):
    out = model.output
    if isinstance(out, dict):
        return [tuple(out[k].shape) for k in out]
    return [tuple(o.shape) for o in (out if isinstance(out, list | tuple) else [out])]
