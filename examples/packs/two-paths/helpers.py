"""Plain-float helpers the pack's expressions call as helpers.NAME(...)."""


def sum_of_uses(x: float, k: float) -> float:
    """d(x·x + k·x)/dx by hand: 2x from the product, k from the linear term."""
    return 2 * x + k
