"""Why the model said what it said: Grad-CAM heat maps and an embedding map.

Grad-CAM comes from the maintained ``grad-cam`` package (pytorch-grad-cam), not
a hand-written CAM. What it needs per architecture is the layer to explain and,
for transformers, how to turn tokens back into a grid. Both are found by probing
the model once instead of a table of names: the module whose output *is* the
tensor ``forward_features`` returns is the last spatial feature map (``bn2`` in
EfficientNet, ``layer4`` in ResNet, ``stages.3`` in ConvNeXt); token models use
their last block's ``norm1`` (the package's recipe for ViT), because after the
final per-token norm only the class token receives a gradient. The heat map is
laid on exactly the pixels the model saw (the resized centre crop, ``model_view``)
rather than stretched over the whole photo, and ``CamResult.view`` says which part
of the photo that is.

The embedding map projects the backbone's pooled features of the validation
images to 2-D with PCA (a randomized SVD in torch), so people can see whether their
classes separate, before and after fine-tuning. Neither side runs the backbone again
when the run is scored: "after" reads the features kept with the validation outputs
(``tlcore.runs.outputs``), "before" the rows of the one embedding cache.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.errors import ModelError

if TYPE_CHECKING:
    from tlcore.results.predict import Predictor


@dataclass
class CamTarget:
    """The layer Grad-CAM explains and how its output becomes (B, C, H, W)."""

    name: str
    layer: nn.Module
    reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None


@dataclass
class CamResult:
    """A heat map in [0, 1] over exactly the pixels the model saw, and the overlay people see.

    The model sees a resized, centre-cropped square of the photo; the map and the
    overlay cover that square (``view`` says which part of the photo it is, ``box``
    where it lies in the original), so no part of the picture is tinted without a reason.
    """

    heatmap: np.ndarray  # (H, W) of the model's input
    overlay: Image.Image  # the model's input pixels with the heat map on top
    class_index: int
    label: str
    probability: float
    layer: str
    probabilities: list[float] = field(default_factory=list)  # every class, in class order
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # the view in the photo
    view: str = ""  # "the centre 328×328 of the 500×375 photo, seen at 224×224"
    photo_size: tuple[int, int] = (0, 0)  # (width, height) of the whole photo


_TARGETS: weakref.WeakKeyDictionary[nn.Module, CamTarget] = weakref.WeakKeyDictionary()


def _tokens_to_grid(prefix: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:, :]
        side = int(math.isqrt(patches.shape[1]))
        grid = patches[:, : side * side].reshape(patches.shape[0], side, side, patches.shape[2])
        return grid.permute(0, 3, 1, 2)

    return reshape


def _nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def cam_target(model: nn.Module, input_size: Sequence[int] = (3, 224, 224)) -> CamTarget:
    """The layer to explain for any timm model, found by one forward pass on a blank image."""
    names = {id(m): n for n, m in model.named_modules() if n}
    finished: list[tuple[str, torch.Tensor]] = []

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and id(module) in names:
            finished.append((names[id(module)], output))

    handles = [m.register_forward_hook(record) for m in model.modules() if id(m) in names]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            features = model.forward_features(torch.zeros(1, *input_size))
    except AttributeError:
        raise ModelError(f"{type(model).__name__} has no forward_features: no Grad-CAM.") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    producers = [name for name, out in finished if out is features]
    if not producers:
        raise ModelError(f"cannot find the last feature layer of {type(model).__name__}.")
    name = producers[-1]  # hooks fire inner-first: the last one is the outermost module
    modules = dict(model.named_modules())
    if features.dim() == 3:  # tokens (B, N, C): explain before the last per-token norm
        blocks = getattr(model, "blocks", None)
        if blocks is not None and hasattr(blocks[-1], "norm1"):
            name = f"blocks.{len(blocks) - 1}.norm1"
        prefix = int(getattr(model, "num_prefix_tokens", 1))
        return CamTarget(name, modules[name], _tokens_to_grid(prefix))
    if features.dim() == 4:
        channels = int(getattr(model, "num_features", features.shape[1]))
        nhwc = features.shape[1] != channels and features.shape[-1] == channels
        return CamTarget(name, modules[name], _nhwc_to_nchw if nhwc else None)
    raise ModelError(f"{type(model).__name__}: features of shape {tuple(features.shape)}.")


def model_view_box(transform: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """The part of the original image (left, top, right, bottom) the model sees after resize+crop.

    Follows timm's eval transform (Resize, CenterCrop); an unknown step means the
    whole image, which is the right answer for a squash resize.
    """
    from torchvision.transforms import CenterCrop, Resize

    x0, y0, sx, sy, w, h = 0.0, 0.0, 1.0, 1.0, float(width), float(height)
    for step in getattr(transform, "transforms", []):
        if isinstance(step, Resize):
            size = step.size
            if isinstance(size, int) or len(size) == 1:
                short = size if isinstance(size, int) else size[0]
                new_w, new_h = (
                    (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
                )
            else:
                new_h, new_w = size
            sx, sy = sx * new_w / w, sy * new_h / h
            w, h = float(new_w), float(new_h)
        elif isinstance(step, CenterCrop):
            crop_h, crop_w = step.size
            x0 += round((w - crop_w) / 2.0) / sx
            y0 += round((h - crop_h) / 2.0) / sy
            w, h = float(crop_w), float(crop_h)
        else:
            break
    return x0, y0, x0 + w / sx, y0 + h / sy


def model_view(transform: Any, image: Image.Image) -> Image.Image:
    """The pixels the model sees: the transform's resize and crop steps applied to the photo,
    stopping before it becomes a normalised tensor."""
    from torchvision.transforms import CenterCrop, Resize

    for step in getattr(transform, "transforms", []):
        if not isinstance(step, Resize | CenterCrop):
            break
        image = step(image)
    return image


def view_text(box: tuple[float, ...], photo: tuple[int, int], seen: tuple[int, int]) -> str:
    """Which part of the photo the model saw, in words."""
    left, top, right, bottom = box
    part_w, part_h = round(right - left), round(bottom - top)
    whole = part_w >= photo[0] - 1 and part_h >= photo[1] - 1
    part = "the whole" if whole else f"the centre {part_w}×{part_h} pixels of the"
    return f"{part} {photo[0]}×{photo[1]} photo, seen at {seen[0]}×{seen[1]}"


def outline_view(image: Image.Image, box: tuple[float, ...], max_side: int = 320) -> Image.Image:
    """The whole photo, scaled to ``max_side``, with the part the model saw outlined."""
    from PIL import ImageDraw

    copy = image.convert("RGB")
    copy.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    scale = copy.width / max(1, image.width)
    line = max(2, round(min(copy.size) / 100))
    outline = [round(v * scale) for v in box]
    ImageDraw.Draw(copy).rectangle(outline, outline=(255, 255, 255), width=line)
    return copy


def gradcam(
    predictor: Predictor, image: Any, class_index: int | None = None, image_weight: float = 0.55
) -> CamResult:
    """Grad-CAM for one image (path or PIL) towards ``class_index`` (default: the top class)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from tlcore.data.images import load_rgb

    pil = image.convert("RGB") if isinstance(image, Image.Image) else load_rgb(image)
    model = predictor.model
    target = _TARGETS.get(model)
    if target is None:  # one probing pass per model, not per photo
        target = _TARGETS[model] = cam_target(model, predictor.data_config["input_size"])
    x = predictor.preprocess(pil).unsqueeze(0).to(predictor.device)
    with torch.no_grad():  # calibrated, as everywhere a probability is shown
        probs = (model(x).float() / getattr(predictor, "temperature", 1.0)).softmax(1)[0].cpu()
    index = int(probs.argmax()) if class_index is None else int(class_index)
    if not 0 <= index < len(predictor.classes):
        raise ModelError(f"class index {index} is out of range (0..{len(predictor.classes) - 1}).")
    with (
        torch.enable_grad(),
        GradCAM(
            model=model, target_layers=[target.layer], reshape_transform=target.reshape_transform
        ) as cam,
    ):
        crop_map = cam(input_tensor=x, targets=[ClassifierOutputTarget(index)])[0]
    model.eval()
    # the same resize and crop as the model's input, so the map lies on exactly those pixels
    box = model_view_box(predictor.transform, *pil.size)
    seen = model_view(predictor.transform, pil)
    heat = np.clip(np.nan_to_num(crop_map).astype(np.float32), 0.0, 1.0)
    if seen.size != (heat.shape[1], heat.shape[0]):  # a transform this code does not follow
        seen = seen.resize((heat.shape[1], heat.shape[0]), Image.Resampling.BICUBIC)
    rgb = np.asarray(seen, dtype=np.float32) / 255.0
    overlay = show_cam_on_image(rgb, heat, use_rgb=True, image_weight=image_weight)
    return CamResult(
        heatmap=heat,
        overlay=Image.fromarray(overlay),
        class_index=index,
        label=predictor.classes[index],
        probability=float(probs[index]),
        layer=target.name,
        probabilities=[float(p) for p in probs],
        box=box,
        view=view_text(box, pil.size, seen.size),
        photo_size=pil.size,
    )


# the projection's randomized SVD (Halko et al., torch.svd_lowrank): this many directions and
# power iterations find the two main axes of real embeddings to |cos| > 0.999999 of the exact
# SVD's (measured on the kept features of runs on the bundled samples, 60 to 1,050 x 1,280)
PCA_DIRECTIONS, PCA_ITERATIONS = 10, 6


def pca_2d(features: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, 2) on the two main axes; signs fixed so the picture does not flip.

    A randomized SVD with a fixed seed (the same picture every time): the exact SVD of the
    whole (N, D) matrix was the map's whole wait once the features were kept, 2 s for
    1,000 photos on one idle core and ten times that on a busy machine, for two axes.
    """
    x = features.detach().double().cpu()
    if x.shape[0] < 2 or x.shape[1] < 1:
        return torch.zeros(x.shape[0], 2)
    x = x - x.mean(dim=0, keepdim=True)
    with torch.random.fork_rng(devices=[]):  # the caller's random numbers stay as they were
        torch.manual_seed(0)
        _, _, v = torch.svd_lowrank(x, q=min(PCA_DIRECTIONS, *x.shape), niter=PCA_ITERATIONS)
    axes = v[:, :2].T
    flip = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    coords = x @ (axes * flip).T
    if coords.shape[1] < 2:
        coords = torch.cat([coords, torch.zeros(coords.shape[0], 2 - coords.shape[1])], dim=1)
    return coords.float()


def embedding_map(
    predictor: Predictor, paths: Sequence[str], labels: Sequence[str], *, pretrained: bool = False
) -> list[dict[str, Any]]:
    """Rows (x, y, label, path) of the images' backbone features projected with PCA.

    ``pretrained=True`` embeds with the backbone as it was before training (the
    original weights), to compare how well the classes separate before and after: those
    are the rows of the one embedding cache (the doctor, the fast path and few-shot
    embedded the same photos with the same backbone and size), so only new photos are
    embedded.
    """
    if pretrained:
        from tlcore.results.doctor import embed_photos

        # on the device the doctor and a default run embed with (the app's predictor is on
        # the CPU; a GPU's rows are other rows of the cache)
        features, _ = embed_photos(list(paths), model=predictor.model_name,
                                   weights=predictor.weights, img_size=predictor.img_size,
                                   device="auto")  # fmt: skip
    else:
        features = predictor.embed(list(paths))
    return map_rows(features, labels, paths)


def map_rows(
    features: torch.Tensor, labels: Sequence[str], paths: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows (x, y, label, path) of features already computed (a run keeps its validation
    photos' features: ``tlcore.runs.outputs``), projected with PCA."""
    coords = pca_2d(features)
    return [
        {"x": float(x), "y": float(y), "label": label, "path": str(path)}
        for (x, y), label, path in zip(coords.tolist(), labels, paths, strict=True)
    ]
