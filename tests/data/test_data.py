"""Dataset loaders on real formats: digits, a CIFAR-10 python-batch fixture, ImageFolder trees."""

import numpy as np
import pytest
import torch
from conftest import SHARED_IMAGENET, write_cifar_fixture, write_image_folder

from gsimclr.data.loaders import load_dataset
from gsimclr.data.splits import split_indices, stratified_subset
from gsimclr.settings.config import DataConfig
from gsimclr.system.errors import UserError


def test_digits_are_real_images_with_one_fixed_test_split():
    data = load_dataset(DataConfig(name="digits", image_size=16, test_fraction=0.2))
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape[1:] == (1, 16, 16)
    assert len(data.train_x) + len(data.test_x) == 1797
    assert data.num_classes == 10 and data.train_x.max() > 200
    again = load_dataset(DataConfig(name="digits", image_size=16, test_fraction=0.2))
    assert torch.equal(data.test_y, again.test_y)


def test_cifar10_reads_the_python_batch_format(tmp_path):
    first_data, first_labels = write_cifar_fixture(tmp_path, per_batch=20)
    data = load_dataset(DataConfig(name="cifar10", root=str(tmp_path), image_size=32))
    assert data.train_x.shape == (100, 3, 32, 32) and data.test_x.shape == (20, 3, 32, 32)
    assert data.classes[0] == "airplane" and data.num_classes == 10
    assert data.train_y[:20].tolist() == first_labels
    # Row-major 3072 = 1024 red, 1024 green, 1024 blue values of a 32x32 image.
    c, y, x = 2, 5, 7
    assert int(data.train_x[0, c, y, x]) == int(first_data[0, c * 1024 + y * 32 + x])


def test_cifar10_missing_is_a_one_line_error_saying_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match=r"data\.download: true"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path / "nowhere")))


def test_cifar10_corrupt_batch_is_a_user_error(tmp_path):
    write_cifar_fixture(tmp_path, per_batch=4)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="data_batch_3"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))


def test_image_folder_resizes_and_labels_by_folder(tmp_path):
    write_image_folder(tmp_path, classes=("cat", "dog", "elephant"), per_class=3)
    data = load_dataset(DataConfig(name="imagefolder", root=str(tmp_path), image_size=12))
    assert data.train_x.shape == (9, 3, 12, 12) and data.test_x.shape == (9, 3, 12, 12)
    assert data.classes == ["cat", "dog", "elephant"]
    assert data.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # Class c was painted strong in channel c: the loader kept colours and channel order.
    means = data.train_x.float().mean(dim=(2, 3))
    assert all(int(means[i].argmax()) == int(data.train_y[i]) for i in range(9))


def test_image_folder_missing_split_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        load_dataset(DataConfig(name="imagefolder", root=str(tmp_path)))


@pytest.mark.skipif(not SHARED_IMAGENET.is_dir(), reason="shared ImageNet subset not present")
def test_shared_imagenet_subset_loads():
    data = load_dataset(DataConfig(name="imagefolder", root=str(SHARED_IMAGENET), image_size=16))
    assert data.train_x.shape == (1250, 3, 16, 16) and data.test_x.shape == (250, 3, 16, 16)
    assert data.classes == ["airplane", "car", "cat", "dog", "elephant"]


def test_validation_split_is_stratified_disjoint_and_seeded():
    labels = torch.tensor(np.repeat(np.arange(5), 40))
    split = split_indices(len(labels), 0.2, seed=1, labels=labels)
    assert len(np.intersect1d(split.fit, split.val)) == 0 and len(split.fit) + len(split.val) == 200
    assert np.bincount(labels[split.val].numpy()).tolist() == [8] * 5
    assert np.array_equal(split.val, split_indices(len(labels), 0.2, seed=1, labels=labels).val)


def test_ten_percent_subset_is_class_stratified():
    labels = torch.tensor(np.repeat(np.arange(4), 50))
    subset = stratified_subset(np.arange(200), labels, 0.1, seed=0)
    assert np.bincount(labels[subset].numpy()).tolist() == [5, 5, 5, 5]


def test_unreadable_images_are_skipped_with_a_count_and_other_files_ignored(tmp_path, capsys):
    write_image_folder(tmp_path, classes=("cat", "dog"), per_class=3)
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    data = load_dataset(DataConfig(name="imagefolder", root=str(tmp_path), image_size=8))
    assert data.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().out


def test_class_without_readable_images_is_a_user_error(tmp_path):
    write_image_folder(tmp_path, classes=("cat", "dog"), per_class=2)
    for image in (tmp_path / "train" / "dog").iterdir():
        image.write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"no readable image in class folder\(s\) \['dog'\]"):
        load_dataset(DataConfig(name="imagefolder", root=str(tmp_path), image_size=8))


def test_empty_class_folder_is_a_user_error(tmp_path):
    write_image_folder(tmp_path, classes=("cat",), per_class=2)
    (tmp_path / "train" / "dog").mkdir()
    with pytest.raises(UserError, match="dog"):
        load_dataset(DataConfig(name="imagefolder", root=str(tmp_path), image_size=8))
