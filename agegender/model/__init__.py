"""What a network is: the families (name -> profile, age output, builder, typed architecture), age
targets, the networks, their augmentation and batch-norm layers, and building one from a recipe.
Pretrained bases and their weights are the room below (:mod:`agegender.pretrained`)."""
