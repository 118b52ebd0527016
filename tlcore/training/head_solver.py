"""Train the new head to convergence on cached embeddings: multinomial logistic regression.

On the fast path the frozen backbone's embeddings are fixed numbers, so the best
linear head is the solution of a convex problem, not something to approach with
a few epochs of small SGD steps: full-batch L-BFGS (what scikit-learn's
``LogisticRegression`` uses) reaches it in a few dozen iterations. The one knob
that matters, the L2 strength, is picked by stratified k-fold cross-validation
on the *training* photos (repeated with three shuffles: on a few dozen photos one
shuffle often ties two strengths), so the validation photos stay an honest estimate.

The objective is scikit-learn's, ``C * sum(loss) + ||W||^2 / 2`` (bias not
penalised), written per photo as ``mean(loss) + ||W||^2 / (2 C n)`` with the
trainer's own criterion (label smoothing, class weights). Inside the solver the
embeddings are centred and divided by one number (the same problem, better
conditioned); both are folded back into the classifier. Rescaling each feature
to unit variance was tried and lost accuracy on both samples (it lifts noise). The Trainer's epochs become slices of
the L-BFGS iterations, so the live curves, checkpoints and stop/resume work as
for any run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlcore.errors import TrainingDiverged
from tlcore.training import features

# ``trainer`` arguments are a tlcore.training.trainer.Trainer, which imports this module:
# named in words, not imported, so there is no import circle (not even for type hints).

log = logging.getLogger("tlcore.training.head_solver")

# inverse L2 strengths (scikit-learn's C) tried by cross-validation, one decade apart. 1e-3
# was dropped: nested CV over both samples' pooled photos (benchmarks.bench_head_defaults)
# scored 0.940 -> 0.944 (ants-bees) and 0.839 = 0.839 (clothing4) without it, a fifth fewer fits
C_GRID: tuple[float, ...] = (1e-2, 1e-1, 1.0, 10.0)
CV_FOLDS = 5
CV_REPEATS = 3  # k-fold repeated with new shuffles: fewer ties between C values on small sets
CV_SMALL_SET = 300  # past this many photos one shuffle decides as well, in a third of the time
CV_MAX_PHOTOS = 4_000  # past this, the L2 is chosen on a stratified sample of the photos
MAX_ITER = 200  # L-BFGS iterations at most, for the final fit and for each CV fit
SHOWN_ITER = 30  # iterations spread over the epochs, so the live curves show the head learn
TOLERANCE = 1e-5  # converged when the gradient's largest entry is below this
STALLED = 1e-9  # ... or when an iteration changes the objective by less than this (relative)

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class HeadFit:
    """What the cross-validation chose (the run's log and epoch events show it)."""

    c: float  # inverse L2 strength, as scikit-learn's LogisticRegression(C=...)
    folds: int
    photos: int  # training photos the CV used
    cv_accuracy: dict[str, float] = field(default_factory=dict)  # "C" -> held-out accuracy
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"solver": "lbfgs", "C": self.c, "folds": self.folds, "photos": self.photos,
                "cv_accuracy": dict(self.cv_accuracy), "cv_seconds": round(self.seconds, 3)}  # fmt: skip


class LogisticHead:
    """Full-batch L-BFGS on centred embeddings for one inverse L2 strength ``c``."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        num_classes: int,
        criterion: Criterion,
        c: float,
        start: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        x = x.double()  # float32 stalls short of the optimum on strongly regularised heads
        self.mean = x.mean(0)
        # one scale for all features (rows of unit norm on average): the same problem,
        # better conditioned against the bias, which L-BFGS's line search needs
        self.scale = float((x - self.mean).pow(2).sum(1).mean().sqrt().clamp(min=1e-12))
        self.x, self.y = (x - self.mean) / self.scale, y
        # scikit-learn's C: with two classes it fits one weight vector v = w1 - w0, whose
        # penalty |v|^2 / 2 equals (|w0|^2 + |w1|^2) at the softmax optimum (w1 = -w0)
        share = 2.0 if num_classes == 2 else 1.0
        self.criterion, self.l2 = criterion, share / (c * len(y)) / self.scale**2
        weight = torch.zeros(num_classes, x.shape[1], device=x.device, dtype=x.dtype)
        bias = torch.zeros(num_classes, device=x.device, dtype=x.dtype)
        if start is not None:
            weight, bias = start[0].clone().to(x.dtype), start[1].clone().to(x.dtype)
        self.weight, self.bias = weight.requires_grad_(), bias.requires_grad_()
        self.optimizer = torch.optim.LBFGS([self.weight, self.bias], lr=1.0, max_iter=1,
                                           history_size=20, line_search_fn="strong_wolfe",
                                           tolerance_grad=TOLERANCE, tolerance_change=1e-16)  # fmt: skip
        self.iterations = 0
        self.stalled = False
        self.loss, self.gradient = self.evaluate()

    def objective(self) -> torch.Tensor:
        logits = self.x @ self.weight.T + self.bias
        self.data_loss = self.criterion(logits, self.y)  # what the loss curve shows
        return self.data_loss + 0.5 * self.l2 * self.weight.pow(2).sum()

    def evaluate(self) -> tuple[float, float]:
        """(objective, largest gradient entry) at the current weights."""
        self.optimizer.zero_grad()
        with torch.enable_grad():  # also when called under no_grad (a resumed run's checks)
            loss = self.objective()
            loss.backward()
        grads = (p.grad.abs().max() for p in (self.weight, self.bias))
        return float(loss.detach()), max(float(g) for g in grads)

    def iterate(self) -> float:
        """One L-BFGS iteration (strong Wolfe line search); the objective after it."""

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            with torch.enable_grad():
                loss = self.objective()
                loss.backward()
            return loss

        before = self.loss
        for fresh in (False, True):
            if fresh:  # no progress: drop the curvature memory, retry from steepest descent
                self.optimizer.state.clear()
            self.optimizer.step(closure)
            self.loss, self.gradient = self.evaluate()
            self.stalled = abs(before - self.loss) <= STALLED * max(1.0, abs(before))
            if not self.stalled or self.gradient <= TOLERANCE:
                break
        self.iterations += 1
        return self.loss

    @property
    def converged(self) -> bool:
        """At the optimum, to float precision (or lost: a non-finite objective ends it too)."""
        return self.gradient <= TOLERANCE or self.stalled or not math.isfinite(self.loss)

    def solve(self, max_iter: int = MAX_ITER) -> LogisticHead:
        """Iterate to convergence in one L-BFGS call (no per-iteration bookkeeping: the CV)."""
        group = self.optimizer.param_groups[0]
        group.update(max_iter=max_iter, max_eval=max_iter * 5 // 4)
        self.optimizer.step(self._closure)
        group.update(max_iter=1, max_eval=1)
        self.iterations += int(self.optimizer.state[self.weight].get("n_iter", 0))
        self.loss, self.gradient = self.evaluate()
        if not self.converged and self.iterations < max_iter:  # stopped early: finish by hand
            while not self.converged and self.iterations < max_iter:
                self.iterate()
        return self

    def _closure(self) -> torch.Tensor:
        self.optimizer.zero_grad()
        loss = self.objective()
        loss.backward()
        return loss

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.mean.dtype) - self.mean) / self.scale @ self.weight.T + self.bias

    @torch.no_grad()
    def copy_into(self, linear: nn.Linear) -> None:
        """Fold the centring into ``linear``'s bias: raw embeddings give the solver's logits."""
        weight = self.weight / self.scale
        linear.weight.copy_(weight.to(linear.weight.dtype))
        linear.bias.copy_((self.bias - weight @ self.mean).to(linear.bias.dtype))

    @torch.no_grad()
    def start_from(self, linear: nn.Linear) -> None:
        """The inverse of ``copy_into``: continue from a classifier's weights (a resumed run)."""
        weight = linear.weight.detach().to(self.weight.device, self.weight.dtype)
        self.weight.copy_(weight * self.scale)
        self.bias.copy_(
            linear.bias.detach().to(self.bias.device, self.bias.dtype) + weight @ self.mean
        )
        self.loss, self.gradient = self.evaluate()


@contextlib.contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Tiny full-batch steps on one CPU thread: on a busy machine, torch's second intra-op
    thread waits for a core and makes each step about 50x slower (measured on 2 cores)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def stratified_folds(labels: torch.Tensor, k: int, seed: int) -> list[torch.Tensor]:
    """``k`` disjoint index sets, each holding about 1/k of every class (shuffled by ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        for j, index in enumerate(members.tolist()):
            folds[(offset + j) % k].append(index)
        offset += len(members)  # the next class starts where this one ended: even fold sizes
    return [torch.tensor(sorted(f), dtype=torch.long) for f in folds if f]


def row_space(views: torch.Tensor) -> torch.Tensor:
    """(V, N, D) embeddings as coordinates in the span of their V*N rows, when that is smaller.

    An L2-penalised linear head's weights lie in the span of its training rows (anything
    orthogonal to them changes no logit and only adds to the penalty), and every CV fold
    trains and predicts on rows of that span. So with fewer photos than features the CV
    solves the same problems in r <= V*N dimensions instead of D: on the samples (80 and
    160 photos, D = 1280) the CV took about half the time, choosing the same C.
    """
    flat = views.reshape(-1, views.shape[2]).double()
    if flat.shape[0] >= flat.shape[1]:
        return views
    _, singular, basis = torch.linalg.svd(flat, full_matrices=False)
    if not bool(singular[0] > 0):
        return views
    basis = basis[singular > singular[0] * 1e-10]
    return (flat @ basis.T).reshape(views.shape[0], views.shape[1], -1)


def choose_l2(
    views: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    criterion: Criterion,
    seed: int,
    grid: Sequence[float] = C_GRID,
) -> HeadFit:
    """The C (inverse L2) with the best held-out accuracy over stratified k folds of photos,
    repeated ``CV_REPEATS`` times with new shuffles (seeds ``seed``, ``seed + 1``, ...) on
    up to ``CV_SMALL_SET`` photos, where one shuffle often ties two strengths; once on more.

    ``views`` is (V, N, D): V embeddings of each of the N training photos, view 0 the
    photo as it is. Folds split photos, never a photo's views, and a held-out photo is
    scored on view 0. Ties go to the stronger L2 (smaller C, the simpler head). When
    some class has a single photo nothing can be held out: the middle of the grid is used.
    """
    with one_cpu_thread(views.device):
        return _choose_l2(views, labels, num_classes, criterion, seed, grid)


def cv_repeats(photos: int) -> int:
    """Shuffles of the k folds: three on a small set (fewer ties), one on a large one."""
    return CV_REPEATS if photos <= CV_SMALL_SET else 1


def _choose_l2(views: torch.Tensor, labels: torch.Tensor, num_classes: int,
               criterion: Criterion, seed: int, grid: Sequence[float]) -> HeadFit:  # fmt: skip
    started = time.perf_counter()
    labels = labels.to(views.device)
    photos = torch.arange(len(labels))
    if len(labels) > CV_MAX_PHOTOS:  # a stratified sample keeps the CV to seconds
        photos = stratified_folds(labels.cpu(), math.ceil(len(labels) / CV_MAX_PHOTOS), seed)[0]
    labels = labels[photos.to(labels.device)]
    counts = torch.bincount(labels.cpu())
    k = min(CV_FOLDS, int(counts[counts > 0].min()))
    if k < 2:
        return HeadFit(c=sorted(grid)[len(grid) // 2], folds=0, photos=len(photos))
    views = row_space(views[:, photos.to(views.device)])
    repeats = cv_repeats(len(photos))
    folds = [fold for repeat in range(repeats)
             for fold in stratified_folds(labels.cpu(), k, seed + repeat)]  # fmt: skip
    starts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    scores: dict[float, float] = {}
    for c in sorted(grid):  # strong to weak L2, each fold warm-started
        correct = 0
        for i, held_out in enumerate(folds):
            keep = torch.ones(len(photos), dtype=torch.bool)
            keep[held_out] = False
            train_idx, test_idx = keep.nonzero().flatten(), held_out
            x = views[:, train_idx.to(views.device)].reshape(-1, views.shape[2])
            head = LogisticHead(x, labels[train_idx].repeat(len(views)), num_classes,
                                criterion, c, starts.get(i)).solve()  # fmt: skip
            starts[i] = (head.weight.detach(), head.bias.detach())
            held = head.logits(views[0, test_idx.to(views.device)])
            correct += int((held.argmax(1) == labels[test_idx]).sum())
        scores[c] = correct / (repeats * len(photos))
    best = max(scores.values())
    chosen = min(c for c, score in scores.items() if score == best)
    return HeadFit(c=chosen, folds=k, photos=len(photos),
                   cv_accuracy={f"{c:g}": round(s, 4) for c, s in scores.items()},
                   seconds=time.perf_counter() - started)  # fmt: skip


def fit_epochs(trainer: Any) -> str:
    """The Trainer's remaining epochs as slices of the L-BFGS iterations; "finished"/"stopped".

    The same events as the epoch loop (a step event per iteration, an epoch event with
    validation metrics and the confusion matrix), so the run directory, the live curves
    and the checkpoints are those of any run; the classifier in ``trainer.model`` holds
    the head after every iteration slice.
    """
    with one_cpu_thread(trainer.device):
        return _fit_epochs(trainer)


def _fit_epochs(trainer: Any) -> str:
    cfg = trainer.config
    views, labels = trainer.train_views, trainer.embeddings["train"][1]
    n_classes = len(trainer.classes)
    if not bool(torch.isfinite(views).all()):  # a damaged backbone: no head can be fitted
        raise TrainingDiverged(
            f"The loss became nan at step {trainer.step + 1} (epoch {trainer.epoch + 1}): the "
            "frozen backbone gives NaN or infinite features for the training photos, so its "
            "weights are damaged; check the weights file (a lower learning rate will not help)."
        )
    if trainer.head_fit is None:
        trainer.head_fit = choose_l2(views, labels, n_classes, trainer.criterion, cfg.seed)
        log.info("head: C %g chosen by %d-fold cross-validation on %d training photos in "
                 "%.2f s (held-out accuracy per C: %s)", trainer.head_fit.c,
                 trainer.head_fit.folds, trainer.head_fit.photos, trainer.head_fit.seconds,
                 trainer.head_fit.cv_accuracy)  # fmt: skip
    x, y = views.reshape(-1, views.shape[2]), labels.repeat(len(views))
    head = LogisticHead(x, y, n_classes, trainer.criterion, trainer.head_fit.c)
    linear = features.head_module(trainer.model)
    if trainer.epoch or trainer.batch_in_epoch:  # resumed: go on from the checkpoint's head
        head.start_from(linear)
    per_epoch = math.ceil(SHOWN_ITER / cfg.epochs)
    for epoch in range(trainer.epoch + 1, cfg.epochs + 1):
        if epoch == cfg.epochs:  # the last epoch goes on to convergence
            per_epoch = MAX_ITER
        trainer.model.train()
        trainer.emit("on_epoch_start", epoch)
        trainer.model.eval()  # the head's dropout off: L-BFGS needs a deterministic objective
        started = time.perf_counter() - trainer.partial["seconds"]
        while (
            trainer.batch_in_epoch < per_epoch and not head.converged and (trainer.step < MAX_ITER)
        ):
            head.iterate()
            trainer.step += 1
            trainer.batch_in_epoch += 1
            trainer.partial["seconds"] = time.perf_counter() - started
            trainer.emit("on_step_end", {"type": "step", "epoch": epoch, "step": trainer.step,
                                         "loss": float(head.data_loss.detach()), "time": time.time()})  # fmt: skip
            if trainer.stop_state:
                head.copy_into(linear)
                return trainer.stop_state
        head.copy_into(linear)
        with torch.no_grad():
            correct = int((head.logits(x).argmax(1) == y).sum())
        trainer.partial.update(
            loss_sum=float(head.data_loss.detach()) * len(y), correct=correct, seen=len(y)
        )
        train_seconds = time.perf_counter() - started
        val_loss, val_acc, matrix = trainer.evaluate()
        seconds = time.perf_counter() - started
        event = trainer.finish_epoch(epoch, train_seconds, seconds, val_loss, val_acc, matrix)
        event["lr"] = {}  # L-BFGS has no learning rate: its line search sets each step
        # no stream of images to time: "images/s" would only divide photos by a solve's seconds
        event["images_per_s"] = None
        event["head"] = trainer.head_fit.to_dict() | {
            "iterations": head.iterations, "converged": head.converged, "objective": head.loss,
            "solve_seconds": round(train_seconds, 3),
        }  # fmt: skip
        event["embedding"] = dict(trainer.embedding_pass)  # the pass people waited for
        trainer.emit("on_epoch_end", event)
        if trainer.stop_state:
            return trainer.stop_state
    return "finished"
