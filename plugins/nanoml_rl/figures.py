"""The return curve of a run folder, in the style of nanoml's other figures."""

import numpy as np

from nanoml.plots import _pyplot, _save, _styled


@_styled
def plot_returns(history, path, *, title=None, window=100):
    """Each training episode's return against the environment step it ended at, and the
    running mean over the last `window` episodes."""
    plt = _pyplot()
    steps = np.asarray(history["episode_step"])
    returns = np.asarray(history["episode_return"], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if returns.size:
        sums = np.cumsum(np.concatenate([[0.0], returns]))
        counts = np.minimum(np.arange(1, returns.size + 1), window)
        running = (sums[1:] - sums[np.maximum(np.arange(1, returns.size + 1) - window, 0)])
        ax.plot(steps, returns, ".", alpha=0.25, markersize=3, label="episode")
        ax.plot(steps, running / counts, label=f"running mean of {window}")
        ax.legend()
    ax.set_xlabel("environment step")
    ax.set_ylabel("return")
    if title:
        ax.set_title(title)
    _save(fig, path)
