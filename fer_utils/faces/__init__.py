"""Media → faces: frame sampling, face detection and cropping, preprocessing into the on-disk face cache."""
