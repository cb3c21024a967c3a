"""The built-in data sets: file names, content checksums, class names and public mirrors."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a data set; `sha256` is of the *decompressed* content, so recompressed copies pass."""

    filename: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to find, fetch and verify an IDX data set."""

    name: str
    class_names: tuple[str, ...]
    images: dict[str, FileSpec]  # split -> file
    labels: dict[str, FileSpec]  # split -> file
    mirrors: tuple[str, ...]

    def files(self) -> list[FileSpec]:
        """All files of the data set, images and labels of every split."""
        return [*self.images.values(), *self.labels.values()]


MNIST = DatasetSpec(
    name="mnist",
    class_names=tuple(str(digit) for digit in range(10)),
    images={
        "train": FileSpec(
            "train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "test": FileSpec(
            "t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
    },
    labels={
        "train": FileSpec(
            "train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "test": FileSpec(
            "t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    images={
        "train": FileSpec(
            "train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "test": FileSpec(
            "t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
    },
    labels={
        "train": FileSpec(
            "train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "test": FileSpec(
            "t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
