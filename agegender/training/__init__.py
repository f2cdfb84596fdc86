"""Training a network: the recipe's set-up, its phases (what trains, compiled how), the fit engine
and its resume, progressive resizing, the transfer families' cached features, the FLOPs a training
step costs, and the shim over Keras' private API the fit needs."""
