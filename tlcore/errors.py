"""User-facing failures.

Every failure a person can cause or fix is one of these, with a message written
for them (what went wrong, which file, what to do). Pages show it with
``st.error``; the CLI prints it and exits 2. Anything else is a bug.
"""


class TLCoreError(Exception):
    """A failure with a message meant for the user, not a traceback."""


class DataError(TLCoreError):
    """The images or the folder layout cannot be used as given."""


class ArchiveError(DataError):
    """An uploaded archive is unsafe, broken or too large."""


class ModelError(TLCoreError):
    """A model name, architecture or head cannot be built."""


class WeightsError(ModelError):
    """Pretrained weights cannot be found, loaded or matched to the model."""


class ConfigError(TLCoreError):
    """A setting (learning rate, batch size, ...) is out of range."""


class RunError(TLCoreError):
    """A training run cannot be started, found, stopped or resumed."""


class TrainingDiverged(RunError):
    """The loss became NaN or infinite: the learning rate is usually too high."""
