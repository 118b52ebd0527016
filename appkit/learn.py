"""Learn mode: the idea behind each wizard step, one collapsed expander per page, and a glossary.

Teachers use the app in class to show *why* transfer learning works; the texts
sit next to the controls they explain, closed until someone opens them, so the
wizard stays short for everyone else. They are kept here, in one place, so they
can be reviewed together and tested for the terms they must mention.
"""

from __future__ import annotations

import streamlit as st

LEARN_PREFIX = "Learn:"

EXPLANATIONS: dict[str, tuple[str, str]] = {
    "data": (
        "why a few photos can be enough, and why some are held back",
        """
A network that starts from random weights has millions of numbers to fit; with a
few dozen photos per label it can **memorise** them instead of learning what the
labels have in common. That is **over-fitting**: training accuracy climbs to 100 %
while accuracy on new photos stays low.

Transfer learning is the way out. The network already learned to *see* on 1.3
million ImageNet photos, so your photos only have to teach it the difference
between your labels: far fewer numbers change, and far fewer photos are needed.

The **validation** photos are set aside and never trained on. They are the only
honest estimate of how the model will do on photos it has never seen, so every
accuracy the app reports is measured on them. Keep them varied and like the
photos you will use the model on; a few good photos per label beat many near-copies.
""",
    ),
    "model": (
        "what pretrained features are",
        """
A pretrained model was trained on **ImageNet** (1.3 million photos of 1,000 kinds
of things). To tell them apart it built a stack of **features**: detectors for
colours and edges near the input, textures and patterns in the middle, object
parts and whole objects near the top. The last layer, the **head**, turns those
features into ImageNet's 1,000 class scores.

The app keeps the **backbone** (everything before the head) and puts a new,
randomly initialised head on it with one output per label of yours. For every
photo the backbone produces a feature vector, an *embedding*, in which similar
photos already lie close together; the new head only has to learn where your
labels lie. Starting **from scratch** (random weights) throws all of that away:
the network must learn to see from your photos alone. The *What the network
sees* page shows the features; the *Compare experiment* page measures the difference.
""",
    ),
    "layers": (
        "general lower layers, task-specific higher ones, and how much to retrain",
        """
**Lower layers are general, higher ones task-specific.** The first layers of
networks trained on very different photos end up with similar colour-blob and
edge detectors, so they suit almost any photo. Deeper layers combine them into
features that are more and more specific to the task they were trained on
(Yosinski et al., 2014, *How transferable are features in deep neural
networks?*). That is why the top of the network is the part worth retraining.

- **Feature extraction**: the whole backbone is frozen and only the new head
  trains. Fastest (each photo's features are computed once and reused every
  epoch), fewest numbers to fit, least over-fitting: the best start with little data.
- **Fine-tune the last groups**: the top groups train too, so the task-specific
  features can adapt to your labels. Needs more photos and more time.
- **Full fine-tune**: every layer trains. Most flexible, but with few photos it
  can over-fit and overwrite what the early layers knew; use a small learning rate.
- **Progressive unfreezing** (ULMFiT, Howard & Ruder, 2018): train the head
  first, then unfreeze one more group per epoch from the top down, so the large,
  random updates of a brand-new head never reach the pretrained layers.

Frozen layers keep their ImageNet BatchNorm statistics. A *learning-rate decay*
below 1 gives each lower group a smaller step than the one above it
(discriminative learning rates).
""",
    ),
    "train": (
        "choosing the learning rate, and spotting over-fitting",
        """
The **learning rate** is the size of each correction step. Too high and the loss
jumps around or explodes; too low and nothing happens in the epochs you have.
About 0.001 (with the AdamW optimizer) suits a new head. Pretrained layers need
smaller steps, about 10x less, so fine-tuning nudges what they know instead of
overwriting it. The **Find learning rate** button runs a range test (Smith,
2017): it raises the rate from tiny to huge over a few batches and suggests one
where the loss falls fastest. The schedule then lowers the rate smoothly
(cosine) so the last epochs settle.

**Over-fitting** shows in the curves: the training loss keeps falling while the
validation loss flattens or rises, and training accuracy is far above
validation accuracy. Remedies: train fewer layers, use augmentation, stop
earlier (early stopping), add label smoothing, or add more varied photos.
""",
    ),
    "compare": (
        "what this experiment shows",
        """
All five runs get **the same photos, split, epochs, image size, batch size and
base learning rate**; only the starting weights and the trainable layers differ.
(a) starts from random weights, (b) to (e) from the same pretrained ones.
The fine-tunes (c) to (e) give each lower group half the step of the group above.

Expect the pretrained runs to beat the scratch run by a wide margin: with a few
dozen photos per label a random network barely gets past guessing, while a
pretrained one is already most of the way there. Feature extraction is usually
the fastest and, with little data, often as good as the fine-tunes; the full
fine-tune trains the most parameters and is the most likely to over-fit. Look
at the **trainable parameters** column: the fewer numbers you ask the photos to
pin down, the less data you need.
""",
    ),
    "network": (
        "how to read these pictures",
        """
**First-layer filters**: each tile is one filter of the very first convolution,
the weights it multiplies a small patch of pixels with, scaled so its smallest
weight is black and its largest bright. After ImageNet training they are colour
blobs and small edge or contrast detectors; with random weights they are noise.
(EfficientNets use tiny 3x3 filters; older networks like AlexNet used 11x11 ones,
where the edges are easier to see.)

**Feature maps**: what one filter of a deeper layer responds to, across the
photo (yellow = strong). Near the input the maps are sharp and look like edge
drawings of the photo; deeper down they are coarser (each pixel covers more of
the photo) and respond to larger, more abstract patterns, parts, and objects.

**ImageNet top-5**: the original 1,000-class head, before any fine-tuning. If it
already says *ant* or *bee*, the backbone's features clearly carry what your
labels need, which is exactly what transfer learning reuses.
""",
    ),
    "ladder": (
        "the ladder from zero-shot to a trained model",
        """
Each rung uses more of *your* photos; all are scored on the same validation photos.

- **Zero-shot** (0 photos): only the class **names**. The pretrained model says
  which of ImageNet's 1,000 things a photo looks like; a sentence model places
  those things' names and yours in one space of meanings, so each of your names
  points at the ImageNet things nearest to it, and the photo gets the name whose
  things it looks most like (after ConSE, Norouzi et al., 2014). It works when
  your classes are, or resemble, things ImageNet knows; it cannot separate what
  the backbone never learned to tell apart.
- **One-shot** (1 photo) and **few-shot** (2 to 10): each class is the average
  embedding of its few photos and a new photo gets the most similar class.
  Nothing is trained; the draw of photos matters, so each point is an average.
- **All photos**: the same idea with every training photo as an example.
- **Trained model**: a new head (and maybe more layers) trained on your photos,
  the usual **transfer learning**. It is the top rung because it learns *which*
  features matter for your labels instead of only averaging them.

Read the chart from left to right: how much does each extra photo buy? A flat
ladder means the pretrained features already carry your classes; a steep last
step means your classes need training.
""",
    ),
}

GLOSSARY: list[tuple[str, str, str]] = [
    (
        "Transfer learning",
        "Reusing what a model learned on one task (the source, e.g. ImageNet) to learn another "
        "(the target, your labels) with less data and time.",
        "Every run: a pretrained backbone plus a new head for your labels. The Few-shot page's "
        "ladder shows every step, from class names alone to a trained model.",
    ),
    (
        "Inductive transfer learning",
        "The target task differs from the source task and the target data have labels "
        "(Pan & Yang, 2010). Fine-tuning a pretrained classifier is the common case.",
        "What the wizard does: ImageNet's 1,000 classes are the source task, your labelled "
        "photos the target task.",
    ),
    (
        "Transductive transfer learning",
        "The task stays the same but the data come from a different domain, and only the "
        "source has labels; the unlabelled target data are used during training.",
        "The Domain adaptation page: labelled photos from one place, unlabelled photos from "
        "the place you will predict on.",
    ),
    (
        "Domain adaptation",
        "The main kind of transductive transfer: the same labels, but the inputs look "
        "different (new camera, lighting, site), so a model loses accuracy unless it adapts.",
        "The Domain adaptation page trains with DANN on unlabelled target photos and compares "
        "it with a plain run.",
    ),
    (
        "Multitask learning",
        "Learning several tasks at once with shared layers, so each task's data helps the others.",
        "Not done here: a run learns one set of labels. It reuses one earlier task (ImageNet) "
        "rather than learning tasks together.",
    ),
    (
        "One-shot learning",
        "Recognising a class from a single example of it.",
        "The Few-shot page with 1 photo per class: each class is the embedding of that photo "
        "(the second rung of its ladder chart).",
    ),
    (
        "Few-shot learning",
        "Recognising classes from a handful of examples each (typically 1 to 10).",
        "The Few-shot page: each class is the average embedding of its few photos, a new photo "
        "gets the most similar class, and nothing is trained. Its ladder chart puts 0, 1, 2, 5 "
        "and 10 photos per class next to a trained model.",
    ),
    (
        "Zero-shot learning",
        "Recognising classes with no examples at all, from a description such as the class "
        "name (e.g. CLIP matching photos to text).",
        "The Few-shot page's first rung and the Predict page's *name your classes* section: the "
        "ImageNet head's guesses and the class names meet in a sentence model's space (ConSE), "
        "offline. Strong on classes ImageNet knows, weak on ones it never separated.",
    ),
    (
        "Feature extraction",
        "Freezing the pretrained backbone and training only a new head on its features.",
        "Layers page preset *Feature extraction*; run (b) of the Compare experiment.",
    ),
    (
        "Fine-tuning",
        "Training some or all pretrained layers further on the new data, with small steps.",
        "Layers page presets *last K groups*, *full*, *progressive*; runs (c) to (e).",
    ),
    (
        "Negative transfer",
        "When the source is so unlike the target that pretrained features hurt rather than help.",
        "The Compare experiment shows it if a pretrained run ever loses to the scratch run.",
    ),
    (
        "Over-fitting",
        "Fitting the training photos so closely that accuracy on new photos falls.",
        "Visible on the Train page when the validation loss rises while the training loss falls.",
    ),
]


def learn(step: str) -> None:
    """The collapsed 'Learn: ...' expander with the idea behind ``step`` (a key of EXPLANATIONS)."""
    title, body = EXPLANATIONS[step]
    with st.expander(f"{LEARN_PREFIX} {title}", expanded=False, icon=":material/school:"):
        st.markdown(body.strip())
