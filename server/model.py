"""The digit classifier: a small Inception-style CNN and a fast batch predictor.

The model takes `(28, 28, 1)` float32 images in [0, 1], white ink on black (the
MNIST convention, and what `server.preprocess` produces), and returns softmax
probabilities over the ten digits. It holds no normalisation the caller must know
about.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

DEFAULT_MODEL_PATH: Path = Path(__file__).resolve().parent / "assets" / "model.keras"

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _conv_bn_relu(filters: int, kernel_size: int) -> list[keras.layers.Layer]:
    # The conv has no bias: the batch norm right after it supplies the shift.
    return [
        keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
    ]


@keras.saving.register_keras_serializable(package="digitstream")
class InceptionBlock(keras.layers.Layer):
    """Four parallel branches, concatenated along the channels.

    - 1×1 convolution;
    - 1×1 reduction → 3×3 convolution;
    - 1×1 reduction → 3×3 → 3×3 (the receptive field of a 5×5 for less compute);
    - 3×3 max pooling → 1×1 projection.

    Every convolution is followed by batch normalisation and ReLU.
    """

    def __init__(
        self,
        filters_1x1: int,
        filters_3x3_reduce: int,
        filters_3x3: int,
        filters_5x5_reduce: int,
        filters_5x5: int,
        filters_pool: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.filters_1x1 = filters_1x1
        self.filters_3x3_reduce = filters_3x3_reduce
        self.filters_3x3 = filters_3x3
        self.filters_5x5_reduce = filters_5x5_reduce
        self.filters_5x5 = filters_5x5
        self.filters_pool = filters_pool
        self.branches = [
            _conv_bn_relu(filters_1x1, 1),
            _conv_bn_relu(filters_3x3_reduce, 1) + _conv_bn_relu(filters_3x3, 3),
            _conv_bn_relu(filters_5x5_reduce, 1) + _conv_bn_relu(filters_5x5, 3) + _conv_bn_relu(filters_5x5, 3),
            [keras.layers.MaxPooling2D(3, strides=1, padding="same"), *_conv_bn_relu(filters_pool, 1)],
        ]
        self.concatenate = keras.layers.Concatenate()

    def build(self, input_shape: tuple) -> None:
        # Build every sub-layer now, so a loaded model has all its weights to restore.
        for branch in self.branches:
            shape = input_shape
            for layer in branch:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        outputs = []
        for branch in self.branches:
            x = inputs
            for layer in branch:
                x = layer(x, training=training)
            outputs.append(x)
        return self.concatenate(outputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        channels = self.filters_1x1 + self.filters_3x3 + self.filters_5x5 + self.filters_pool
        return (*input_shape[:-1], channels)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters_1x1": self.filters_1x1,
            "filters_3x3_reduce": self.filters_3x3_reduce,
            "filters_3x3": self.filters_3x3,
            "filters_5x5_reduce": self.filters_5x5_reduce,
            "filters_5x5": self.filters_5x5,
            "filters_pool": self.filters_pool,
        }


def build_model(dropout: float = 0.3) -> keras.Model:
    """Stem at 28×28, two Inception blocks at 14×14, two at 7×7, then GAP and softmax."""
    inputs = keras.Input(shape=IMAGE_SHAPE, dtype="float32", name="image")
    x = inputs
    for layer in _conv_bn_relu(24, 3):
        x = layer(x)
    x = keras.layers.MaxPooling2D(2, name="pool_to_14")(x)
    x = InceptionBlock(16, 16, 32, 8, 16, 16, name="inception_14a")(x)
    x = InceptionBlock(16, 16, 32, 8, 16, 16, name="inception_14b")(x)
    x = keras.layers.MaxPooling2D(2, name="pool_to_7")(x)
    x = InceptionBlock(24, 24, 48, 12, 24, 24, name="inception_7a")(x)
    x = InceptionBlock(32, 32, 64, 16, 32, 32, name="inception_7b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="digitstream_inception")


def count_flops(model: keras.Model) -> int:
    """Floating-point operations to classify one image, counted by TF's profiler.

    The forward pass is traced at batch 1 and its variables frozen into constants,
    so the profiler sees the whole inference graph (a multiply-add counts as two).
    """
    forward = tf.function(lambda images: model(images, training=False))
    concrete = forward.get_concrete_function(tf.TensorSpec([1, *IMAGE_SHAPE], tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def load_model(path: str | Path = DEFAULT_MODEL_PATH) -> keras.Model:
    """Load a saved model; `InceptionBlock` is registered, so no custom objects are needed."""
    return keras.models.load_model(path, compile=False)


class BatchPredictor:
    """The Keras model on a batch without `model.predict` and its per-call overhead: the
    reference the export is checked against and the benchmarks compare with.

    A `tf.function` whose input signature leaves the batch size free traces once and
    then runs every batch, whatever its size.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self._predict = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32)],
            reduce_retracing=True,
        )

    @property
    def traces(self) -> int:
        """How many times the model was traced: 1 once warm, whatever the batch sizes since."""
        return int(self._predict.experimental_get_tracing_count())

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        return self._predict(tf.constant(images)).numpy()
