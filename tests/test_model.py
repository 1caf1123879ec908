import numpy as np
import pytest
from paper_cnn import paper_cnn_parameters

from fer_utils.training.model import build_paper_cnn


@pytest.mark.parametrize(("classes", "expected"), [(8, 542_136), (7, 542_119)])
def test_paper_parameter_count(classes, expected):
    """542,136 at 180×180 and 8 classes is the paper's own figure; the rest follows from the layers."""
    assert build_paper_cnn(classes).count_params() == expected == paper_cnn_parameters(classes, 180)


@pytest.mark.parametrize(("classes", "size"), [(7, 48), (2, 64), (8, 96)])
def test_parameter_count_follows_the_layers_at_every_size(classes, size):
    assert build_paper_cnn(classes, image_size=size).count_params() == paper_cnn_parameters(classes, size)


def test_architecture_matches_the_paper():
    model = build_paper_cnn(8, dropout=(0.3, 0.5, 0.5), l1=1e-3)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 64, 64]
    assert all(
        c.kernel_size == (3, 3) and c.padding == "same" and c.activation.__name__ == "relu" for c in convs
    )
    pools = [layer for layer in model.layers if layer.__class__.__name__ == "MaxPooling2D"]
    assert [p.pool_size for p in pools] == [(2, 2)] * 3
    drops = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert drops == [0.3, 0.5, 0.5]
    dense = model.get_layer("dense")
    assert dense.units == 16
    assert dense.kernel_regularizer is not None and np.isclose(dense.kernel_regularizer.l1, 1e-3)
    assert model.get_layer("emotion").activation.__name__ == "softmax"
    assert model.input_shape == (None, 180, 180, 1)


def test_no_regularizer_without_l1():
    assert build_paper_cnn(7).get_layer("dense").kernel_regularizer is None


def test_uint8_faces_give_probabilities():
    model = build_paper_cnn(3, image_size=48)
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1), dtype=np.uint8)
    probabilities = np.asarray(model(faces, training=False))
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 3, "dropout": (0.3, 0.3)}, "three rates"),
        ({"num_classes": 3, "dropout": (0.3, 1.5, 0.3)}, "dropout rates"),
        ({"num_classes": 3, "l1": -1.0}, "l1"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_paper_cnn(**kwargs)
