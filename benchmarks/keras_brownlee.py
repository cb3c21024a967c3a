"""The seed's own Keras training loop for the Brownlee AC-GAN, as a timing worker (runs in the Keras venv).

Not part of acgan and never imported by it: `benchmarks/side_by_side.py` starts this file with the Python of
`benchmarks/.keras-venv` (made by `make bench-keras`) and talks to it over stdin/stdout:

    -> "ready"             once the models are built and compiled
    <- "run N"             train N steps of the seed's loop
    -> "<seconds>"         wall-clock time of those N steps
    <- "quit"

The models, optimizers and loop are the seed's (shared/seeds/002, "How to Develop an AC-GAN"), changed only
where Keras 3 renamed an argument (`lr` -> `learning_rate`, `alpha` -> `negative_slope`), with `predict`
made quiet (`verbose=0`) and the per-step print left out: both are terminal output, not training work.
One change keeps the seed's meaning: Keras 3 reads `trainable` when a step runs, not when a model is
compiled as Keras 2 did, so the seed's `d_model.trainable = False` would silently freeze the discriminator in
its own updates too ("The model does not have any trainable weights"). The loop sets it True before the
discriminator's updates and False before the generator's (checked: the discriminator's 24 weight tensors
change in its steps and none in the generator's).
Images are random in [-1, 1] (N, 28, 28, 1), as in the PyTorch side of the comparison.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras import layers


def define_discriminator(in_shape: tuple[int, int, int] = (28, 28, 1), n_classes: int = 10) -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=0.02)
    in_image = keras.Input(shape=in_shape)
    fe = layers.Conv2D(32, (3, 3), strides=(2, 2), padding="same", kernel_initializer=init)(in_image)
    fe = layers.LeakyReLU(negative_slope=0.2)(fe)
    fe = layers.Dropout(0.5)(fe)
    fe = layers.Conv2D(64, (3, 3), padding="same", kernel_initializer=init)(fe)
    fe = layers.BatchNormalization()(fe)
    fe = layers.LeakyReLU(negative_slope=0.2)(fe)
    fe = layers.Dropout(0.5)(fe)
    fe = layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same", kernel_initializer=init)(fe)
    fe = layers.BatchNormalization()(fe)
    fe = layers.LeakyReLU(negative_slope=0.2)(fe)
    fe = layers.Dropout(0.5)(fe)
    fe = layers.Conv2D(256, (3, 3), padding="same", kernel_initializer=init)(fe)
    fe = layers.BatchNormalization()(fe)
    fe = layers.LeakyReLU(negative_slope=0.2)(fe)
    fe = layers.Dropout(0.5)(fe)
    fe = layers.Flatten()(fe)
    out1 = layers.Dense(1, activation="sigmoid")(fe)
    out2 = layers.Dense(n_classes, activation="softmax")(fe)
    model = keras.Model(in_image, [out1, out2])
    opt = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5)
    model.compile(loss=["binary_crossentropy", "sparse_categorical_crossentropy"], optimizer=opt)
    return model


def define_generator(latent_dim: int, n_classes: int = 10) -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=0.02)
    in_label = keras.Input(shape=(1,))
    li = layers.Embedding(n_classes, 50)(in_label)
    li = layers.Dense(7 * 7, kernel_initializer=init)(li)
    li = layers.Reshape((7, 7, 1))(li)
    in_lat = keras.Input(shape=(latent_dim,))
    gen = layers.Dense(384 * 7 * 7, kernel_initializer=init)(in_lat)
    gen = layers.Activation("relu")(gen)
    gen = layers.Reshape((7, 7, 384))(gen)
    merge = layers.Concatenate()([gen, li])
    gen = layers.Conv2DTranspose(192, (5, 5), strides=(2, 2), padding="same", kernel_initializer=init)(merge)
    gen = layers.BatchNormalization()(gen)
    gen = layers.Activation("relu")(gen)
    gen = layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", kernel_initializer=init)(gen)
    out_layer = layers.Activation("tanh")(gen)
    return keras.Model([in_lat, in_label], out_layer)


def define_gan(g_model: keras.Model, d_model: keras.Model) -> keras.Model:
    d_model.trainable = False
    gan_output = d_model(g_model.output)
    model = keras.Model(g_model.input, gan_output)
    opt = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5)
    model.compile(loss=["binary_crossentropy", "sparse_categorical_crossentropy"], optimizer=opt)
    return model


def generate_latent_points(latent_dim: int, n_samples: int, n_classes: int = 10) -> list[np.ndarray]:
    z_input = np.random.randn(latent_dim * n_samples).reshape(n_samples, latent_dim)
    labels = np.random.randint(0, n_classes, n_samples)
    return [z_input, labels]


def train_steps(models: tuple[keras.Model, keras.Model, keras.Model], dataset: list[np.ndarray], steps: int) -> None:
    """The body of the seed's `train()` loop, `steps` times (batch 64: D on 32 real, D on 32 fake, G on 64)."""
    g_model, d_model, gan_model = models
    images, labels = dataset
    latent_dim, n_batch, half_batch = 100, 64, 32
    for _ in range(steps):
        ix = np.random.randint(0, images.shape[0], half_batch)
        d_model.trainable = True
        d_model.train_on_batch(images[ix], [np.ones((half_batch, 1)), labels[ix]])
        z_input, labels_input = generate_latent_points(latent_dim, half_batch)
        x_fake = g_model.predict([z_input, labels_input], verbose=0)
        d_model.train_on_batch(x_fake, [np.zeros((half_batch, 1)), labels_input])
        z_input, z_labels = generate_latent_points(latent_dim, n_batch)
        d_model.trainable = False
        gan_model.train_on_batch([z_input, z_labels], [np.ones((n_batch, 1)), z_labels])


def main() -> None:
    np.random.seed(0)
    d_model = define_discriminator()
    g_model = define_generator(100)
    gan_model = define_gan(g_model, d_model)
    rng = np.random.default_rng(0)
    dataset = [rng.uniform(-1, 1, (4096, 28, 28, 1)).astype("float32"), rng.integers(0, 10, 4096)]
    models = (g_model, d_model, gan_model)
    train_steps(models, dataset, 3)  # builds the train functions (tf.function tracing) before any timing
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        start = time.perf_counter()
        train_steps(models, dataset, int(command[1]))
        print(f"{time.perf_counter() - start:.6f}", flush=True)


if __name__ == "__main__":
    main()
