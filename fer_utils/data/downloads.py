"""The datasets by name (:data:`DATASETS`), where to get each one (:func:`manual_download`), and the errors
that point there when a root is missing or nothing under it fits the layout.
"""

from __future__ import annotations

from pathlib import Path

#: Dataset names accepted by :func:`dataset_samples` and ``fer preprocess --dataset``.
DATASETS = ("ravdess", "savee", "mead", "folder", "fer2013", "ferplus", "fer2013csv")

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
  Faces are already cropped: use --detector none. The common export histogram-equalized every face
  (and JPEG-compressed it): its caches record the pixel step hist, so models trained on them equalize
  the raw faces they are given. For FER2013's raw pixels use ferplus or fer2013csv.""",
    "ferplus": """FER+ (Barsoum et al. 2016): FER2013's raw pixels with 10 crowd votes per face, 8 emotions + contempt.
  Where:   https://github.com/microsoft/FERPlus (labels, MIT) and FER2013's fer2013.csv (Kaggle, login);
           or ../shared/data/fer2013plus.
  Which:   run FER+'s generate_training_data.py on fer2013.csv and fer2013new.csv.
  Layout:  <root>/FER2013Train|FER2013Valid|FER2013Test/ with ferNNNNNNN.png faces and label.csv (no
           header: file, face box, votes over neutral, happiness, surprise, sadness, anger, disgust, fear,
           contempt, unknown, NF); fer2013_labels.csv beside them (optional) adds FER2013's original labels.
  Labels:  --label-source majority (FER+'s rule; faces without a majority emotion are skipped) or fer2013.
  Faces are already cropped: use --detector none.""",
    "fer2013csv": """FER2013 as Kaggle's fer2013.csv (emotion, pixels, Usage) with FER+'s fer2013new.csv beside it.
  Where:   https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge
           (fer2013.csv) and https://github.com/microsoft/FERPlus (fer2013new.csv).
  Layout:  <root>/fer2013.csv and <root>/fer2013new.csv; their rows align by position (not by the number
           in FER+'s image name).
  Labels:  --label-source majority (FER+'s) or fer2013 (the original label).""",
}


def manual_download(dataset: str) -> str:
    """Where to get a dataset, which archive and where to unpack it (text for people)."""
    key = dataset.lower()
    if key not in MANUAL_DOWNLOADS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    return MANUAL_DOWNLOADS[key]


def require_dataset_root(root: str | Path, dataset: str) -> Path:
    """``root`` as a path; a ValueError saying where to get ``dataset`` when it is not a folder."""
    path = Path(root).expanduser()
    if not path.is_dir():
        problem = "does not exist" if not path.exists() else "is not a folder"
        raise ValueError(f"{dataset}: dataset root {path} {problem}.\n\n{manual_download(dataset)}")
    return path


def no_match_error(dataset: str, root: Path, expected: str) -> ValueError:
    """The error of a dataset root where no file matches the layout, with where to get the data."""
    return ValueError(
        f"{dataset}: no file under {root} matches the layout {expected}.\n\n{manual_download(dataset)}"
    )
