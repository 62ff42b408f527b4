"""Faces in ordinary pictures: find them, align them to the training geometry, put results back.

- ``detect``: faces with five landmarks (eyes, nose, mouth corners) through MTCNN.
- ``geometry``: where those landmarks sit in a model's training images, and where predict finds it.
- ``measure``: the face_geometry stage: measures it in the training photos (data/faces/geometry.json).
- ``align``: the similarity transform to that geometry, the aligned crop, and pasting back.
"""
