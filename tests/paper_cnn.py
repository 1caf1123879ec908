"""The paper CNN's parameter count from its description (three 3×3 convolutions 16/64/64 with 2×2 max
pooling, Dense(16), Dense(classes)), so tests derive the number instead of pinning it."""


def paper_cnn_parameters(classes: int, image_size: int) -> int:
    convolutions = [(1, 16), (16, 64), (64, 64)]
    weights = sum(3 * 3 * inputs * filters + filters for inputs, filters in convolutions)
    side = image_size
    for _ in convolutions:
        side //= 2  # 'same' convolutions keep the side, each pooling halves it (floor)
    flat = side * side * 64
    return weights + (flat * 16 + 16) + (16 * classes + classes)
