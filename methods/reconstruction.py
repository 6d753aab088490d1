"""Layer-wise and block-wise reconstruction after pruning (Wagner et al. 2026, "A free lunch in LLM compression"): each
prunable layer, its mask fixed, trained with Adam to reproduce the dense network's output of that layer on
calibration samples; t counts epochs' worth of batches drawn in turn from them, for each layer. Its inputs
come from the network as pruned and reconstructed so far, which lets a layer correct the error of the layers
before it. ``block-reconstruction`` does the same for each transformer block, training all of its parameters
(the task declares its blocks: the language models')."""

from methods.objective import Reconstruction
from methods.spec import Budget, Length, Retraining, Start, Weights, register_method

WAGNER = "Wagner et al., A Free Lunch in LLM Compression: Revisiting Retraining after Pruning, 2026"

register_method(Retraining(
    name="reconstruction", formula="argmin ||W_T X_T - (W ⊙ m) X||² layer by layer",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, minimizes=Reconstruction("pruned"),
    budget=Budget.CALIBRATION,
    summary="reconstruct each layer's dense output on calibration samples, inputs from the pruned network",
    cite=WAGNER, label="reconstruction", color="#c49c94",
))

register_method(Retraining(
    name="block-reconstruction", formula="argmin ||B_T(X_T) - B(X)||² block by block",
    weights=Weights.TRAINED, start_at=Start.T, length=Length.t, minimizes=Reconstruction("pruned", unit="block"),
    budget=Budget.CALIBRATION,
    summary="reconstruct each transformer block's dense output on calibration samples, all its parameters trained",
    cite=WAGNER, label="block reconstruction", color="#dbdb8d",
))
