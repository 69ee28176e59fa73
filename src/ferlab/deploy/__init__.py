"""Deployment, along the pipeline a face takes:

- :mod:`~ferlab.deploy.formats`: model formats and their runtimes (Keras, LiteRT, ONNX Runtime), one
  registry; :func:`~ferlab.deploy.formats.load_classifier` opens any of them;
- :mod:`~ferlab.deploy.export`: a run's model -> an exported file, with its sidecar and parity report;
- :mod:`~ferlab.deploy.media`: decoding images and videos, with one set of limits;
- :mod:`~ferlab.deploy.detection`: face detectors (a registry) and the FER-style face crop;
- :mod:`~ferlab.deploy.pipeline`: detect -> crop -> classify, batched;
- :mod:`~ferlab.deploy.tracking`: track ids across frames, probability smoothing (live and predict);
- :mod:`~ferlab.deploy.timeline`: a video's emotions over time per track, as a plot and a summary;
- the apps: :mod:`~ferlab.deploy.predict` (files), :mod:`~ferlab.deploy.live` (camera/video, tracking),
  :mod:`~ferlab.deploy.web` (``ferlab serve``).
"""
