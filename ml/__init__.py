"""galsearch's offline machinery: survey data, simulation, augmentations, MoCo, embeddings, search."""
