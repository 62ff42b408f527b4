"""The shared core every stage uses: errors, paths, atomic files, params, images, stage plumbing, the Keras runtime."""
