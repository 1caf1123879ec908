"""The video datasets' layouts: RAVDESS, SAVEE and MEAD, each a table of its codes and a parser of its
file names and folders into samples (every file walked is a sample or a skipped item with its reason).
"""

from __future__ import annotations

import re
from pathlib import Path

from fer_utils.data.downloads import no_match_error, require_dataset_root
from fer_utils.data.samples import REASON_NOT_SELECTED, VIDEO_SUFFIXES, Sample, SkippedItem, media_files

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
    root = require_dataset_root(root, "ravdess")
    modality_codes = _as_set(modalities or ("01", "02"), RAVDESS_MODALITIES, "RAVDESS modality")
    if "03" in modality_codes:
        raise ValueError("RAVDESS modality 03 is audio-only: it has no faces")
    channel_codes = _as_set(channels, RAVDESS_CHANNELS, "RAVDESS vocal channel")
    samples, skipped = [], []
    matched = 0
    for path in media_files(root, skipped):
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
        raise no_match_error("ravdess", root, "Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4")
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
    root = require_dataset_root(root, "savee")
    if (root / "AudioVisualClip").is_dir():
        root = root / "AudioVisualClip"
    speakers = {s.lower(): s for s in SAVEE_SPEAKERS}
    samples, skipped = [], []
    matched = 0
    for path in media_files(root, skipped):
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
        raise no_match_error("savee", root, "AudioVisualClip/<speaker>/<code><nn>.avi")
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
    root = require_dataset_root(root, "mead")
    view_set = _as_set(views, MEAD_VIEWS, "MEAD view")
    level_set = {int(level) for level in ([levels] if isinstance(levels, int | str) else levels)}
    if not level_set <= set(MEAD_LEVELS):
        raise ValueError(f"MEAD levels must be among {MEAD_LEVELS}, got {sorted(level_set)}")
    samples, skipped = [], []
    matched = 0
    for path in media_files(root, skipped):
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
        raise no_match_error("mead", root, _MEAD_EXPECTED)
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
