"""TRAIN, PRUNE, RETRAIN on the results store: each step computed once and reused thereafter.

The base network and its rewind checkpoints are trained once per (task, seed); a retraining round
is a folder named by the hash of its hyperparameters, and iterative rounds form a chain.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core import distributed, masks
from harness.core.declared import identity_name
from harness.core.errors import DamagedFile, HarnessError
from harness.core.hparams import BaseHparams, Compute, RetrainHparams
from harness.core.identity import task_fingerprint
from harness.core.peak_memory import measured
from harness.core.progress import Progress
from harness.core.seeding import derive_seed
from harness.core.step_cost import StepCost, counted, tensor_bytes
from harness.core.tensor_digest import digest
from harness.engine.checkpoints import BaseRun, base_checkpoint_steps, cpu_state
from harness.engine.gate import check_cell
from harness.engine.integrity import stored_weights
from harness.engine.speed import compare
from harness.engine.train import TrainOutcome, to_step, train, trained_parameters
from harness.engine.train import step as train_step
from harness.storage import paths, store
from harness.storage.record import BaseRecord, CellRecord, EpochRecord, SpeedRecord, cell_fields, history_to_json
from harness.storage.store import Store
from methods import layerwise, objective
from methods.calibration import HEAD, SAMPLES, SEED, Calibration
from methods.lr import PruningEffect, Window, rate_at_step
from methods.pruning import PruningStrategy, get_pruning
from methods.spec import Weights, get_method
from methods.trainable import Prepared, trainable_count
from tasks.spec import Data, DataOptions, Task, get_task


def pruning_effect(weights: dict[str, torch.Tensor], before: masks.Mask, after: masks.Mask,
                   model: nn.Module) -> PruningEffect:
    """How much one pruning step removed: the norm of the weights it zeroed relative to the norm of
    all of the network's parameters, and the share of the surviving weights it took."""
    params = dict(model.named_parameters())
    total = sum(float(weights[name].double().pow(2).sum()) for name in params)
    removed = sum(float((weights[name].double() * (before[name] & ~after[name])).pow(2).sum()) for name in after)
    kept_before, kept_after = masks.remaining(before), masks.remaining(after)
    return PruningEffect(math.sqrt(removed / total) if total > 0 else 0.0,
                         1.0 - kept_after / kept_before if kept_before else 0.0)


def own_history(history: list[EpochRecord], end_step: int, spe: int) -> list[EpochRecord]:
    """The records a run ending at ``end_step`` would have: epoch ends up to it, and its own end
    (a shared run also holds evaluations taken at the ends of the shorter runs it stands for)."""
    own = []
    for record in history:
        step = round(record.epoch * spe)
        if step <= end_step and (step % spe == 0 or step == end_step):
            own.append(record)
    return own


@dataclass(frozen=True)
class Retrained:
    """What retraining cost: samples (sequences, images) it read, trainable parameters, the peak memory of a step
    (or of a reconstruction), and FLOPs (counted)."""

    samples: int = 0
    tokens_per_sample: int | None = None  # a language model's sequence length
    trainable: int = 0
    peak_bytes: int = 0
    flops: int = 0

    @property
    def tokens(self) -> int | None:
        return None if self.tokens_per_sample is None else self.samples * self.tokens_per_sample


def reconstructed_parameters(model: nn.Module, mask: masks.Mask, blocks: list[str] | None) -> int:
    """What a reconstruction trains: each prunable layer's kept weights and bias, or each block's parameters
    less their pruned weights."""
    if blocks is not None:
        total = sum(p.numel() for b in blocks for p in model.get_submodule(b).parameters())
        inside = [keep for n, keep in mask.items() if any(n.startswith(f"{b}.") for b in blocks)]
        return total - sum(int((~keep).sum()) for keep in inside)
    layers = [model.get_submodule(n.rsplit(".", 1)[0]) for n in mask]
    return masks.remaining(mask) + sum(m.bias.numel() for m in layers if getattr(m, "bias", None) is not None)


def seqlen(data: Data) -> int | None:
    """The tokens of a training sample, for a language model's data; None for other data."""
    value = getattr(data, "seqlen", None)
    return int(value) if value is not None else None


def nonzero_density(weights: dict[str, torch.Tensor], mask: masks.Mask) -> float:
    """The share of the prunable weights that are nonzero: after a densifying merge, more than the mask keeps."""
    total = sum(keep.numel() for keep in mask.values())
    return sum(int((weights[name] != 0).sum()) for name in mask) / total


PRUNED_KEPT = 2  # pruned networks a runner keeps (each the size of a network and its mask)


@dataclass(frozen=True)
class PruningCost:
    seconds: float = 0.0
    peak_bytes: int = 0
    tokens: int = 0  # of calibration data


def reported(data: Data, model: nn.Module) -> dict[str, Any]:
    """What the task's data reports of a network beyond its metric (a language model's seqlen and next-token
    accuracy), under the record's field names."""
    report = getattr(data, "report", None)  # optional in the ``Data`` protocol
    return dict(report(model)) if report is not None else {}


def prunable(hp: RetrainHparams, task: Task, model: nn.Module) -> list[str]:
    """The weights a cell's strategy prunes: the task's prunable ones, and its ``head`` when the strategy is
    told to (parameter ``head``)."""
    names = task.prunable(model)
    told = get_pruning(hp.pruning).resolve_params(dict(hp.pruning_params)).get(HEAD)
    if told and task.head is not None:
        names = names + [n for n in task.head(model) if n not in names]
    return names


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def init_model(task: Task, seed: int, *purpose: object) -> nn.Module:
    torch.manual_seed(derive_seed(seed, "init", *purpose))
    return task.make_model()


def starting_weights(
    hp: RetrainHparams, task: Task, trained: dict[str, torch.Tensor], base: BaseRun
) -> dict[str, torch.Tensor]:
    """The W a retraining method hands to TRAIN: W_T (``trained``), W_{T-t}, or a fresh W'_0."""
    weights = get_method(hp.method).weights
    if weights is Weights.TRAINED:
        return trained
    if weights is Weights.REWOUND:
        return base.weights_at_epoch(task.epochs - hp.retrain_epochs)
    return init_model(task, hp.base.seed, "reinit", hp.round).state_dict()


@dataclass
class Runner:
    """Runs on one device, in one precision, on CPU with one thread count: its ``compute``, which
    every run it is given must declare (``BaseHparams.compute``)."""

    store: Store
    data_options: DataOptions = field(default_factory=DataOptions)
    tracker: Any = None  # harness.tracking.mirror.Tracker, or None for no mirroring
    progress: Progress = field(default_factory=Progress)
    bf16: bool = False
    threads: int = 1  # CPU intra-op threads while training
    executed_epochs: float = 0.0  # training epochs this runner has actually run (resumed work excluded)
    _data: dict[tuple[str, str | None, int], Data] = field(default_factory=dict)
    # the last networks PRUNE made of a W_T, by what determines them: a study's methods on one pruned
    # network (its cells are adjacent in a study's order) prune it once per process, not once per method
    _pruned: OrderedDict[tuple[Any, ...], tuple[dict[str, torch.Tensor], masks.Mask, PruningCost]] = field(
        default_factory=OrderedDict)

    @property
    def device(self) -> torch.device:
        return torch.device(self.data_options.device)

    @property
    def compute(self) -> Compute:
        return Compute.of(self.data_options.device, self.bf16, self.threads)

    def check_compute(self, hp: BaseHparams) -> None:
        if hp.compute != self.compute:
            raise HarnessError(f"{hp.task} seed {hp.seed} is declared to be computed as {hp.compute}, but this "
                               f"runner computes as {self.compute}: build the cells with the runner's compute")

    def task(self, hp: BaseHparams) -> Task:
        return get_task(hp.task).resolved(hp)

    def data(self, task: Task) -> Data:
        key = (task.name, identity_name(task.load_data), task.batch_size)  # a checkpoint task's folders too
        if key not in self._data:
            self._data[key] = task.load_data(replace(self.data_options, batch_size=task.batch_size))
        return self._data[key]

    def train(self, model: nn.Module, mask: masks.Mask | None, task: Task, **kwargs: Any) -> TrainOutcome:
        if mask is not None:
            mask = {k: v.to(self.device) for k, v in mask.items()}
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return train(model, mask, task, self.data(task), bf16=self.bf16, **kwargs)
        finally:
            torch.set_num_threads(before)

    # -- TRAIN: the original run -------------------------------------------------------------

    def base(self, hp: BaseHparams, rewind_epochs: Iterable[float] = ()) -> BaseRun:
        """W_0 ... W_T of the original run, with W_g stored at every epoch g that will be rewound to."""
        self.check_compute(hp)
        with store.exclusive(self.store.base_dir(hp), self._waiting):
            distributed.barrier()
            run = self._repairing(lambda retry: self._base(hp, rewind_epochs))
            distributed.barrier()
        return run

    def _waiting(self, folder: Path) -> None:
        self.progress.note(f"waiting for {folder.name}: another process is computing it")

    def _repairing(self, work: Any) -> Any:
        """``work(retry)``, again after each damaged file it meets is set aside (and with it what it
        stood for), so that the work recomputes what the file held."""
        seen: set[Path] = set()
        while True:
            try:
                return work(bool(seen))
            except DamagedFile as e:
                if e.path in seen:
                    raise
                seen.add(e.path)
                aside = store.set_aside(e.path)
                for path in e.invalidates:
                    store.set_aside(path, "stale")
                moved = f"moved to {aside.name}" if aside is not None else "already moved"
                self.progress.warn(f"{e}: {moved}; recomputing what it held")

    def _base(self, hp: BaseHparams, rewind_epochs: Iterable[float]) -> BaseRun:
        task = self.task(hp)
        data = self.data(task)
        spe = data.steps_per_epoch
        T = task.epochs
        if task.pretrained is not None:
            return self._checkpoint_base(hp, task)
        if to_step(task.epochs, spe) < 1:
            raise HarnessError(f"--epochs-scale {hp.epochs_scale:g} leaves {task.name} T = {task.epochs:.3g} epochs, "
                               f"less than one step ({spe} steps an epoch); valid: --epochs-scale >= "
                               f"{hp.epochs_scale / (task.epochs * spe):.3g}")
        folder = self.store.base_dir(hp)
        wanted = base_checkpoint_steps(T, spe, rewind_epochs)
        run = BaseRun(hp, folder, spe, None, trained_now=False)
        result, missing = self.store.base_progress(hp, wanted)
        if result is not None and not missing:
            run.result = BaseRecord.from_json(result)
            self.progress.note(f"reusing base network {folder.name}")
            if not run.result.compute:
                self.progress.warn(f"{folder.name} was stored before its compute (device, bf16, threads) was "
                                   "recorded: `harness run` and `tune` then trained with the machine's thread count, "
                                   f"so it may hold other numbers than {self.compute} computes; delete {folder} to "
                                   "recompute it")
        else:
            self._train_base(run, task, sorted(missing), fresh=result is None)
        self._mirror_base(run, task)
        return run

    def _checkpoint_base(self, hp: BaseHparams, task: Task) -> BaseRun:
        """A pretrained checkpoint as the base network: W_T is the checkpoint, stored once, evaluated once."""
        folder = self.store.base_dir(hp)
        spe = self.data(task).steps_per_epoch
        run = BaseRun(hp, folder, spe, None, trained_now=False)
        result, missing = self.store.base_progress(hp, {0})
        if result is not None and not missing:
            run.result = BaseRecord.from_json(result)
            self.progress.note(f"reusing base network {folder.name}")
        else:
            Store.write_hparams(folder, hp)
            started = time.time()
            model = task.pretrained().to(self.device)  # type: ignore[misc]
            store.atomic_save(run.checkpoint_path(0), {"model": cpu_state(model)})
            data = self.data(task)
            run.result = BaseRecord(
                task=hp.task, seed=hp.seed, epochs_scale=hp.epochs_scale, batch_size=hp.batch_size, T=0.0,
                steps_per_epoch=spe, val_acc=data.evaluate(model, "val"), test_acc=data.evaluate(model, "test"),
                parameters=parameter_count(model), metric=task.metric, metric_definition=task.metric_definition,
                task_fingerprint=task_fingerprint(task), compute=dataclasses.asdict(hp.compute),
                seconds=time.time() - started, finished_at=time.time(), **reported(data, model))
            store.atomic_write_json(folder / paths.HISTORY, [])
            store.atomic_write_json(folder / paths.RESULT, run.result.to_json())
            run.trained_now = True
        self._mirror_base(run, task)
        return run

    def _train_base(self, run: BaseRun, task: Task, missing: list[int], fresh: bool) -> None:
        hp, spe = run.hp, run.steps_per_epoch
        Store.write_hparams(run.folder, hp)

        def save(step: int, model: nn.Module, optimizer: torch.optim.Optimizer, history: list) -> None:
            store.atomic_save(run.checkpoint_path(step), {
                "model": cpu_state(model), "optimizer": optimizer.state_dict()})

        model = init_model(task, hp.seed).to(self.device)
        if fresh:
            first, optimizer_state = 0, None
            end = to_step(task.epochs, spe)
        else:
            # A rewind point nobody asked for before: replay from the closest stored checkpoint.
            have = store.checkpoint_steps(run.folder)
            first = max((s for s in have if s <= missing[0]), default=0)
            end = missing[-1]
            if first in have:
                state = store.load(run.checkpoint_path(first), keys=("model", "optimizer"))
                model.load_state_dict(state["model"])
                optimizer_state = state["optimizer"]
            else:
                optimizer_state = None
        started = time.time()
        label = f"train {hp.task} seed {hp.seed}" + ("" if fresh else " (rewind points)")
        with self.progress.track(label, end - first) as progress:
            outcome = self.train(
                model, None, task, start_epoch=first / spe, epochs=(end - first) / spe,
                seed=hp.seed, optimizer_state=optimizer_state,
                checkpoint_steps=frozenset(missing), on_checkpoint=save,
                resume_path=run.folder / paths.RESUME if fresh else None, progress=progress,
            )
        run.trained_now = True
        self.executed_epochs += outcome.executed_steps / spe
        self._say_resumed(run.folder, outcome, spe)
        if fresh:
            final = outcome.history[-1]
            run.result = BaseRecord(
                task=hp.task, seed=hp.seed, epochs_scale=hp.epochs_scale, batch_size=hp.batch_size, T=task.epochs,
                steps_per_epoch=spe, val_acc=final.val_acc, test_acc=final.test_acc,
                parameters=parameter_count(model), metric=task.metric, metric_definition=task.metric_definition,
                task_fingerprint=task_fingerprint(task), compute=dataclasses.asdict(hp.compute),
                seconds=time.time() - started, finished_at=time.time(), **reported(self.data(task), model))
            store.atomic_write_json(run.folder / paths.HISTORY, history_to_json(outcome.history))
            store.atomic_write_json(run.folder / paths.RESULT, run.result.to_json())
        else:
            raw = store.read_result(run.folder / paths.RESULT)
            run.result = BaseRecord.from_json(raw) if raw else None

    def _say_resumed(self, folder: Path, outcome: TrainOutcome, spe: int) -> None:
        if outcome.resumed_step is not None:
            self.progress.note(f"{folder}: resumed from epoch {outcome.resumed_step / spe:g}")

    def _mirror_base(self, run: BaseRun, task: Task) -> None:
        if self.tracker is not None:
            self.tracker.mirror_base(run.folder, task, run.hp)

    # -- PRUNE + RETRAIN -----------------------------------------------------------------------

    def retrain(self, hp: RetrainHparams, base: BaseRun | None = None) -> CellRecord:
        """One round of pruning and retraining (and, first, the rounds before it in the chain)."""
        return self.retrain_group([hp], base)[0]

    def retrain_group(self, hps: list[RetrainHparams], base: BaseRun | None = None) -> list[CellRecord]:
        """Cells that differ only in t, of a method whose run for t is a prefix of its run for any
        longer t (``Retraining.shares_prefix``): one run to the longest t, each shorter t's result
        taken on the way. A single cell is the group of one. Results come back in the order given."""
        # one lock order everywhere (a round before its previous round, then by name, the base last)
        folders = sorted({self.store.retrain_dir(hp) for hp in hps})
        with contextlib.ExitStack() as held:
            for folder in folders:
                held.enter_context(store.exclusive(folder, self._waiting))
            distributed.barrier()
            # a retry opens the base network again: a checkpoint set aside is trained anew
            results = self._repairing(lambda retry: self._retrain_group(hps, None if retry else base))
            distributed.barrier()
        return results

    def _retrain_group(self, hps: list[RetrainHparams], base: BaseRun | None) -> list[CellRecord]:
        first = hps[0]
        task = self.task(first.base)
        method = get_method(first.method)
        T = task.epochs
        for hp in hps:
            check_cell(hp)
            self.check_compute(hp.base)
        if len(hps) > 1:
            shape = {replace(hp, retrain_epochs=0.0) for hp in hps}
            if len(shape) > 1 or first.round > 1 or not method.shares_prefix(T):
                raise ValueError("a group shares one run only across retraining times of a prefix-sharing "
                                 "method's first round")
        if base is None:
            rewinds = {method.rewind_epoch(T, hp.retrain_epochs) for hp in hps} - {None}
            base = self.base(first.base, sorted(rewinds))
        results: dict[RetrainHparams, CellRecord] = {}
        pending = []
        for hp in sorted(set(hps), key=lambda h: h.retrain_epochs):
            folder = self.store.retrain_dir(hp)
            if (record := self.store.cell_record(hp)) is not None:
                stored_weights(folder, record)  # "cached" only for a cell whose weights are intact
                if self.device.type == "cpu" and record.torch_threads not in (0, self.threads):
                    self.progress.warn(f"{folder.name} was computed with {record.torch_threads} CPU threads, before "
                                       f"threads were part of a cell's name (now {self.threads}); delete {folder} "
                                       "to recompute it")
                results[hp] = record
                self._mirror_retrain(folder, task, hp)
            else:
                pending.append(hp)
        if pending:
            results.update(self._run_pending(pending, task, base))
        return [results[hp] for hp in hps]

    def _pruning_input(
        self, hp: RetrainHparams, task: Task, base: BaseRun
    ) -> tuple[dict[str, torch.Tensor], masks.Mask]:
        """The network this round prunes (W_T, or the previous round's result) and its mask so far."""
        previous = hp.previous()
        if previous is None:
            model = task.make_model()
            return base.weights_at_epoch(task.epochs), masks.full_mask(model, prunable(hp, task, model))
        record = self.retrain(previous, base)
        return stored_weights(self.store.retrain_dir(previous), record)

    def _run_pending(self, pending: list[RetrainHparams], task: Task, base: BaseRun) -> dict[RetrainHparams, Any]:
        longest = pending[-1]
        method = get_method(longest.method)
        strategy = get_pruning(longest.pruning)
        pruning_params = dict(longest.pruning_params)
        params = method.resolve_params(dict(longest.method_params))
        T, t = task.epochs, longest.retrain_epochs
        trained, mask = self._pruning_input(longest, task, base)
        before = mask
        mask_update = None
        data = self.data(task)
        spe = data.steps_per_epoch
        start, epochs = method.start(T, t), method.epochs(T, t)
        first_step, last_step = to_step(start, spe), to_step(start + epochs, spe)
        model, seed = task.make_model(), longest.base.seed  # the network trained, and the architecture pruned
        cost = PruningCost()
        if method.during is not None:
            mask_update = method.during.mask_update(
                first_step, last_step, params, (masks.density(mask), longest.densities[-1]),
                strategy.pruner(pruning_params, model, seed))
        else:
            target = longest.level if longest.structured else longest.densities[-1]
            trained, mask, cost = self._prune_once(longest, strategy, trained, mask, target, pruning_params, task)

        effect = pruning_effect(trained, before, mask, model) if method.lr.needs_effect else None
        window = Window(task.schedule, T, t, start, epochs, effect)
        model.load_state_dict(starting_weights(longest, task, trained, base))
        model = model.to(self.device)
        teacher = self._dense(task, base) if method.minimizes.needs_teacher else None
        if not method.minimizes.trains_by_steps:
            return {longest: self._reconstruct(longest, task, base, model, teacher, mask, params, cost)}
        if method.trains.initializes:  # the parameters the scope adds (LoRA's A): drawn from the cell's seed
            torch.manual_seed(derive_seed(seed, "adapters", longest.round))
        prepared = method.trains.prepare(model, mask, params)
        loss = method.minimizes.loss(task.predict, teacher, params)
        lr_at = rate_at_step(method.lr, window, params, spe)
        spent = StepCost() if last_step == first_step else self._step_cost(
            prepared, task, loss, lambda: data.batch(seed, *divmod(first_step, spe)), lr_at(first_step), teacher)

        # the shorter retraining times of the group end inside this run
        ends: dict[int, list[RetrainHparams]] = {}
        for hp in pending[:-1]:
            ends.setdefault(to_step(method.start(T, hp.retrain_epochs) + method.epochs(T, hp.retrain_epochs),
                                    spe), []).append(hp)
        for hp in pending:
            Store.write_hparams(self.store.retrain_dir(hp), hp)
        started = time.time()
        results: dict[RetrainHparams, Any] = {}

        def retrained(hp: RetrainHparams, step: int) -> Retrained:
            if step == first_step:  # t = 0: nothing retrained, nothing spent
                return Retrained(tokens_per_sample=seqlen(data))
            return Retrained(samples=(step - first_step) * task.batch_size, tokens_per_sample=seqlen(data),
                             trainable=trainable_count(prepared), peak_bytes=spent.peak_bytes,
                             flops=spent.flops * (step - first_step))

        def merged(module: nn.Module) -> nn.Module:
            out = method.trains.merged(Prepared(module, prepared.mask), task.make_model())
            if not method.trains.densifies:
                masks.apply_mask(out, mask)
            return out

        def snapshot(step: int, module: nn.Module, optimizer: torch.optim.Optimizer, history: list) -> None:
            for hp in ends.get(step, []):
                results[hp] = self._finalize(hp, task, base, merged(module), mask, own_history(history, step, spe),
                                             time.time() - started, cost, retrained(hp, step))

        folder = self.store.retrain_dir(longest)
        label = f"{longest.method_label} round {longest.round} {longest.label}"
        if len(pending) > 1:
            label += f" t={','.join(f'{hp.retrain_epochs:g}' for hp in pending)}"
        with self.progress.track(label, last_step - first_step) as progress:
            outcome = self.train(
                prepared.module, prepared.mask, task, start_epoch=start, epochs=epochs, seed=longest.base.seed,
                lr_at=lr_at, loss=loss,
                checkpoint_steps=frozenset(ends), eval_steps=frozenset(ends), on_checkpoint=snapshot,
                mask_update=mask_update, resume_path=folder / paths.RESUME, progress=progress,
            )
        self.executed_epochs += outcome.executed_steps / spe
        self._say_resumed(folder, outcome, spe)
        final_mask = outcome.mask if method.during is not None and outcome.mask is not None else mask
        results[longest] = self._finalize(longest, task, base, merged(prepared.module), final_mask,
                                          own_history(outcome.history, last_step, spe), time.time() - started, cost,
                                          retrained(longest, last_step))
        return results

    def _dense(self, task: Task, base: BaseRun) -> nn.Module:
        """The dense network W_T, which distillation and reconstruction read (for a later round too)."""
        dense = task.make_model()
        dense.load_state_dict(base.weights_at_epoch(task.epochs))
        return dense.to(self.device).eval()

    def _step_cost(self, prepared: Prepared, task: Task, loss: Any, batch: Callable[[], Any], lr: float,
                   teacher: nn.Module | None) -> StepCost:
        """The FLOPs and peak memory of one retraining step, on a copy of the network (the run itself is not
        touched, its random state neither), so that they are the same whether the run is new or resumed."""
        module = copy.deepcopy(prepared.module)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                optimizer = task.optimizer.build(trained_parameters(module), lr)
                bound = masks.BoundMask(module, prepared.mask)
                inputs = batch()  # before counting: what a step allocates, not what loading a batch does
                with counted(self.device) as spent:
                    train_step(module, module, optimizer, loss or task.loss, inputs, bound, task.grad_clip, self.bf16,
                               self.device.type)
        finally:
            torch.set_num_threads(before)
        spent.peak_bytes += tensor_bytes(module, *([teacher] if teacher is not None else []))
        return spent

    def _reconstruct(self, hp: RetrainHparams, task: Task, base: BaseRun, model: nn.Module, dense: nn.Module | None,
                     mask: masks.Mask, params: dict[str, float], cost: PruningCost) -> CellRecord:
        """A cell of a layer-wise reconstruction: its layers reconstructed in turn on calibration batches."""
        assert dense is not None
        data = self.data(task)
        folder = self.store.retrain_dir(hp)
        Store.write_hparams(folder, hp)
        size = task.batch_size
        seed = derive_seed(int(params[objective.SEED]), "reconstruction")
        count = math.ceil(int(params[objective.SAMPLES]) / size)
        batches = [data.batch(seed, 0, i % data.steps_per_epoch) for i in range(count)]
        steps = to_step(hp.retrain_epochs, data.steps_per_epoch)  # t epochs' worth of batches, for each layer
        started = time.time()
        feed = lambda m, b: task.loss(m, b)  # noqa: E731  (a forward pass: the hooks read the layers' inputs)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with self.progress.track(f"{hp.method_label} round {hp.round} {hp.label}", len(mask)) as progress, \
                    counted(self.device) as spent:
                reconstruction = get_method(hp.method).minimizes
                rule = dict(steps=steps, lr=float(params[objective.LR]), dense_inputs=reconstruction.inputs == "dense",
                            progress=None if progress is None else lambda done: progress(done, {}))
                if reconstruction.unit == "block":
                    layerwise.reconstruct_blocks(model, dense, mask, task.blocks(model), batches, feed, **rule)
                else:
                    layerwise.reconstruct(model, dense, mask, batches, feed, **rule)
        finally:
            torch.set_num_threads(before)
        kept = reconstructed_parameters(model, mask, task.blocks(model) if reconstruction.unit == "block" else None)
        retrained = Retrained(samples=steps * size, tokens_per_sample=seqlen(data),
                              trainable=kept, peak_bytes=spent.peak_bytes + tensor_bytes(model, dense),
                              flops=spent.flops) if steps else Retrained(tokens_per_sample=seqlen(data))
        return self._finalize(hp, task, base, model, mask, [], time.time() - started, cost, retrained)

    def _prune_once(self, hp: RetrainHparams, strategy: PruningStrategy, trained: dict[str, torch.Tensor],
                    mask: masks.Mask, target: float, params: dict[str, float], task: Task,
                    ) -> tuple[dict[str, torch.Tensor], masks.Mask, PruningCost]:
        """``_prune``, or a copy of what it gave for the same W_T (the base network's folder, whose name
        determines its numbers), strategy, parameters and target in this process; a later round's input is
        a cell's, and is pruned anew."""
        if hp.previous() is not None:
            return self._prune(strategy, trained, mask, target, params, task, hp.base.seed)
        key = (self.store.base_dir(hp.base).name, hp.pruning, hp.pruning_params, target)
        if key not in self._pruned:
            self._pruned[key] = self._prune(strategy, trained, mask, target, params, task, hp.base.seed)
            while len(self._pruned) > PRUNED_KEPT:
                self._pruned.popitem(last=False)
        self._pruned.move_to_end(key)
        weights, kept, cost = self._pruned[key]
        return {k: v.clone() for k, v in weights.items()}, {k: v.clone() for k, v in kept.items()}, cost

    def _prune(self, strategy: PruningStrategy, trained: dict[str, torch.Tensor], mask: masks.Mask, target: float,
               params: dict[str, float], task: Task, seed: int,
               ) -> tuple[dict[str, torch.Tensor], masks.Mask, PruningCost]:
        """PRUNE once: the weights to start from (updated, for a strategy that updates them), the mask, and
        what it cost. A calibrated strategy is handed the network itself and the task's calibration data."""
        subject = task.make_model()
        calibration = None
        if strategy.calibrated:
            resolved = strategy.resolve_params(params)
            subject.load_state_dict(trained)
            subject.to(self.device)
            inputs = self.data(task).calibration(int(resolved[SAMPLES]), int(resolved[SEED]))
            calibration = Calibration(inputs.to(self.device), task.calibration)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with measured(self.device) as spent:
                pruned = strategy.pruned(trained, mask, target, params, subject, seed, calibration)
        finally:
            torch.set_num_threads(before)
        cost = PruningCost(spent.seconds, spent.peak_bytes, calibration.tokens if calibration is not None else 0)
        return {k: v.cpu() for k, v in pruned.weights.items()}, pruned.mask, cost

    def _finalize(self, hp: RetrainHparams, task: Task, base: BaseRun, model: nn.Module, mask: masks.Mask,
                  history: list[EpochRecord], seconds: float, cost: PruningCost, retrained: Retrained) -> CellRecord:
        """Measure and store one finished cell; ``result.json`` is written last, so its presence
        means the cell is complete."""
        method = get_method(hp.method)
        T, t = task.epochs, hp.retrain_epochs
        data = self.data(task)
        folder = self.store.retrain_dir(hp)
        sparse_flops, dense_flops = task.flops(model, mask)
        weights = cpu_state(model)
        mask = {k: v.cpu() for k, v in mask.items()}
        final = history[-1] if history else EpochRecord(math.nan, data.evaluate(model, "val"),
                                                        data.evaluate(model, "test"))
        record = CellRecord(
            run=folder.name, **cell_fields(hp),
            density=masks.density(mask), compression_ratio=masks.compression_ratio(mask),
            remaining_weights=masks.remaining(mask), prunable_weights=masks.total(mask),
            parameters=parameter_count(model) - masks.total(mask) + masks.remaining(mask),
            flops=sparse_flops, dense_flops=dense_flops,
            T=T, start_epoch=method.start(T, t), epochs_trained=method.epochs(T, t),
            val_acc=final.val_acc, test_acc=final.test_acc, metric=task.metric,
            metric_definition=task.metric_definition,
            unpruned_val_acc=base.result.val_acc, unpruned_test_acc=base.result.test_acc,
            seconds=seconds, finished_at=time.time(), device=str(self.device), torch_threads=self.threads,
            weights_sha256=digest(weights), mask_sha256=digest(mask),
            pruning_seconds=cost.seconds, pruning_peak_bytes=cost.peak_bytes, calibration_tokens=cost.tokens,
            retraining_samples=retrained.samples, retraining_tokens=retrained.tokens,
            trainable_parameters=retrained.trainable, retraining_peak_bytes=retrained.peak_bytes,
            retraining_flops=retrained.flops,
            merged_density=nonzero_density(weights, mask) if method.trains.densifies else None,
            **reported(data, model),
        )
        if not distributed.all_same((record.weights_sha256, record.mask_sha256)):
            raise RuntimeError(f"DDP ranks diverged in {folder.name}: their weights or masks differ")
        store.atomic_save(folder / paths.WEIGHTS, weights)
        store.atomic_save(folder / paths.MASK, mask)
        store.atomic_write_json(folder / paths.MASK_DENSITIES, masks.layer_densities(mask))
        store.atomic_write_json(folder / paths.HISTORY, history_to_json(history))
        store.atomic_write_json(folder / paths.RESULT, record.to_json())
        self._mirror_retrain(folder, task, hp)
        return record

    def measure_speed(self, hp: RetrainHparams) -> SpeedRecord:
        """Latency of the compacted network against the unpruned one, on this runner's device;
        kept next to the run's results as ``speed.json``."""

        task = self.task(hp.base)
        folder = self.store.retrain_dir(hp)
        model = task.make_model()
        model.load_state_dict(store.load(folder / paths.WEIGHTS))
        mask = {k: v.to(self.device) for k, v in store.load(folder / paths.MASK).items()}
        speed = dataclasses.replace(compare(model.to(self.device), mask, task.input_shape, task.channels_last),
                                    device=str(self.device))
        store.atomic_write_json(folder / paths.SPEED, speed.to_json())
        return speed

    def _mirror_retrain(self, folder: Path, task: Task, hp: RetrainHparams) -> None:
        if self.tracker is not None:
            self.tracker.mirror_retrain(folder, task, hp, self.store.base_dir(hp.base))
