"""What a network is: the families (name -> profile, age output, builder, typed architecture), age
targets, the networks and their layers, pretrained weights, and building one from a recipe."""
