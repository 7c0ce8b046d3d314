"""The model registry: trained models, their versions, and loading them for inference.

Training writes models here; serving, incremental inference, the optimizer and the
``ml_predict`` family of SQL functions read them. Nothing here imports a feature area.

    registry       ModelRecord, versions, save_model / drop_model (the table ``sqlml.models``)
    loading        load_model -> LoadedModel (cached per session and version), devices
    features       FeatureSpec: what a model reads, and encoding Arrow data into tensors
    architectures  ARCHITECTURES and register_architecture: the networks a record names
    aliases        aliases ('m@production') and traffic splits of versions
    published      the serving folder beside the database: what servers read instead of it
    encoders       ENCODERS: the feature encoding as ONNX / TorchScript pieces (EXPORT MODEL)
"""
