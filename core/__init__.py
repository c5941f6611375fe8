"""The small core every part of higherhrnet-trt may import; it imports none of them.

- ``errors``: the one error type a user can cause (UserError) and its relatives, signal handling;
- ``metadata``: the schema a model file carries (ModelMeta), versioned and read back;
- ``keypoints``: keypoint sets (COCO, CrowdPose): joint names, flip index, skeleton, OKS sigmas;
- ``geometry``: FrameGeometry, the one object that owns a frame's forward warp and its inverse;
- ``files``: atomic outputs, the checks that refuse to overwrite inputs, bundled files;
- ``formats``: file suffixes and size constants used across parts;
- ``lazy``: one helper to import optional heavy libraries with a one-line install hint;
- ``gpu`` / ``cuda``: GPU facts from the driver (ctypes) and cuda-python result checks.

Only NumPy at import time; OpenCV is imported inside the few functions that need it.
"""
