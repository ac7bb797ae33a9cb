"""Every prompt text of the project, in one place.

VPTracker's released checkpoint expects its inference prompt byte for byte (SPEC section 4); the
OmniPT texts follow the paper's Fig. 2 and Fig. 4. Builders and inference loops call the functions
here and never spell a prompt themselves.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vptracker.boxes import NONE_TOKEN, ordinal

IMAGE = "<image>"
VPTRACKER_SPECIAL_TOKENS = ("<ref>", "</ref>", "<template>", "</template>", "<search>", "</search>")
CLS_TOKEN = "<CLS>"

# ----------------------------------------------------------------------------- VPTracker

_VP_RELEASED = (
    "You are a visual object tracker.\n"
    "Given the visual information of the target object, including an initial visual template "
    "<template><image></template>, \n"
    "and the language description of the target object, including an initial language description "
    "<ref>{language}</ref>.\n"
    "\n"
    "Then, detect the target object is in search image <search><image></search>.\n"
    "    1. determine whether the target is visible in the search image.\n"
    "    2. return the bounding box of its current position in the search image in the format "
    "[x_min, y_min, x_max, y_max]. \n"
    "\n"
    "Please return the answer in JSON format, for example: "
    "```json\n{{\n  \"visible\": \"yes/no\", \n  \"bbox\":[x_min, y_min, x_max, y_max]\n}}\n```."
)
# The released sampler (dataset/sampling_dataset.py) writes its own opening: no "including an
# initial ..." clauses, spaces inside <ref> </ref>, the description stripped.
_VP_SAMPLER_HEAD = (
    "You are a visual object tracker.\n"
    "Given the visual information of the target object <template><image></template>, and the language "
    "description of the target object <ref> {language} </ref>.\n"
)
_VP_OUTLINE_NOTE = (
    "\n\nPlease note that you should first search for the target within the {color} rectangular "
    "bounding box. If you cannot find it, then search for the target outside the rectangular "
    "bounding box."
)


def raw_language(seq) -> str:
    """The description as the released code reads it: ``<seq>/language.txt`` (beside the frame
    folder) in text mode, final newline kept, CRLF read as LF; the reader's stripped text when
    there is no such file."""
    path = Path(seq.frames[0]).parent.parent / "language.txt"
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            return f.read()
    return seq.language or ""


def vptracker_prompt(language: str, color: str = "red", visual_prompt: bool = True) -> str:
    """The released inference prompt (``evaluation/infer_tracking_qwen_vlt_crop_absent.py``).

    ``{language}`` goes in as the released loop read it (the file's text, final newline included).
    With the outline note the text ends after "bounding box."; without it, after the JSON example
    and a newline, as released.
    """
    text = _VP_RELEASED.format(language=language)
    if visual_prompt:
        return text + _VP_OUTLINE_NOTE.format(color=color)
    return text + "\n"


def vptracker_training_prompt(language: str, color: str = "red", visual_prompt: bool = True) -> str:
    """The released sampler's training prompt: its own opening, the description stripped, a final newline."""
    body = _VP_RELEASED[_VP_RELEASED.index("\n\nThen, detect"):].format()
    text = _VP_SAMPLER_HEAD.format(language=language.strip()) + body[1:]
    if visual_prompt:
        text += _VP_OUTLINE_NOTE.format(color=color)
    return text + "\n"


# ----------------------------------------------------------------------------- OmniPT

_NONE_NOTE = f'Using "{NONE_TOKEN}" to mean that the object does not exist in a particular image.'


def images(n: int) -> str:
    return IMAGE * n


def video_intro(n_images: int) -> str:
    return f"There are some images of a video: {images(n_images)}."


def omnipt_sot(n_images: int, first_box: str) -> str:
    return f"{video_intro(n_images)} Track the object located at {first_box} in the first image. {_NONE_NOTE}"


def omnipt_rmot(n_images: int, description: str) -> str:
    return (f"{video_intro(n_images)} Track objects that meet the following descriptions: "
            f"{description.strip()} {_NONE_NOTE}")


def _views_intro(images_per_view: Sequence[int]) -> str:
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    n = len(images_per_view)
    parts = [f"the {ordinal(i)} view are {images(k)}" for i, k in enumerate(images_per_view)]
    listed = ", ".join(parts[:-1]) + f" and {parts[-1]}" if n > 1 else parts[0]
    return f"There are {words.get(n, str(n))} views of the same scene: {listed}."


def omnipt_crmot(images_per_view: Sequence[int], description: str) -> str:
    return (f"{_views_intro(images_per_view)} Track objects that meet the following descriptions: "
            f"{description.strip()} {_NONE_NOTE}")


MOT_QUERY_DETECT = "Where are the objects located in the first frame?"
MOT_QUERY_TRACK = "Track the location of these objects in this sequence."
MOT_QUERY_NEW = "Are there any objects in the image sequence that were added midway through the sequence?"


def omnipt_mot_first(n_images: int) -> str:
    return f"{video_intro(n_images)} {MOT_QUERY_DETECT}"


def omnipt_mot_track(first_boxes: str) -> str:
    return f"{MOT_QUERY_TRACK} The objects in the first frame are: {first_boxes}. {_NONE_NOTE}"


def omnipt_mot_new() -> str:
    return f"{MOT_QUERY_NEW} {_NONE_NOTE}"


def omnipt_video_caption(n_images: int) -> str:
    return f"{video_intro(n_images)} Describe this video."


def omnipt_instance_caption(n_images: int, first_box: str) -> str:
    return (f"{video_intro(n_images)} There is a people at {first_box} in the first image. "
            "Describe this person according to the whole video.")


def omnipt_grounding(description: str) -> str:
    """Stage 1's proxy task (visual grounding on BenSMOT): one image, one person's caption."""
    return (f"{IMAGE} Locate the person that meets the following description: {description.strip()} "
            "Answer with the bounding box of the person.")


# ----------------------------------------------------------------------------- mid-training pretexts

def pretext_detection() -> str:
    return f"{IMAGE} Detect all the objects in this image and give their boxes."


def pretext_location(n_images: int, first_box: str) -> str:
    return (f"{video_intro(n_images)} The object is located at {first_box} in the first image. "
            f"Predict its location in the following images. {_NONE_NOTE}")


def pretext_reid(n_candidates: int) -> str:
    cands = " ".join(f"Candidate {i + 1}: {IMAGE}" for i in range(n_candidates))
    return (f"This is a person: {IMAGE}. {cands} Which candidate is the same person? "
            "Answer with the candidate number.")


def reid_answer(index: int) -> str:
    return f"Candidate {index + 1}"


def clip_image_query() -> str:
    return f"{IMAGE}{CLS_TOKEN}"


def clip_text_query(caption: str) -> str:
    return f"{caption.strip()}{CLS_TOKEN}"


def no_objects_answer() -> str:
    return "There are no objects."
