"""The model metadata is the single source of a model's keypoint set, versioned and read back."""

from __future__ import annotations

import json

import pytest

from higherhrnet_trt.core.metadata import FORMAT_VERSION, PREFIX, ModelMeta

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

#: The COCO keypoint convention as the COCO evaluation code defines it (pycocotools' cocoeval
#: kpt_oks_sigmas / 10, and the person category's keypoint names), written out here by hand.
COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
              "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
COCO_SIGMAS = [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]

HAND5 = dict(dataset="hand5", joint_names=["wrist", "thumb", "index", "middle", "ring"],
             flip_index=[0, 1, 2, 3, 4], skeleton=[[0, 1], [0, 2], [0, 3], [0, 4]],
             joint_order=[0, 3, 2, 4, 1], sigmas=[0.05, 0.03, 0.03, 0.03, 0.03])


def roundtrip(meta: ModelMeta) -> ModelMeta:
    return ModelMeta.from_props(meta.to_props())


def test_written_metadata_carries_the_whole_keypoint_set_and_reads_it_back():
    meta = roundtrip(ModelMeta.for_dataset("coco"))
    assert meta.format_version == FORMAT_VERSION == 2
    kp = meta.keypoints
    assert list(kp.joint_names) == COCO_NAMES
    assert [round(s * 10, 3) for s in kp.sigmas] == COCO_SIGMAS
    # The official parser's order: head and shoulders, then hips, then limbs outward.
    assert list(kp.joint_order) == [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]


def test_a_keypoint_set_no_dataset_table_knows_is_read_from_the_file():
    kp = roundtrip(ModelMeta(**HAND5)).keypoints
    assert kp.name == "hand5" and kp.num_joints == 5
    assert kp.joint_order == (0, 3, 2, 4, 1)
    assert kp.skeleton == ((0, 1), (0, 2), (0, 3), (0, 4))


def test_format_1_files_take_joint_order_and_sigmas_from_their_named_dataset():
    props = ModelMeta.for_dataset("coco").to_props()
    for key in ("joint_order", "sigmas"):
        del props[PREFIX + key]
    props[PREFIX + "format_version"] = "1"
    kp = ModelMeta.from_props(props).keypoints
    assert [round(s * 10, 3) for s in kp.sigmas] == COCO_SIGMAS


def test_format_1_file_whose_joints_contradict_its_dataset_is_refused():
    props = ModelMeta.for_dataset("coco").to_props()
    for key in ("joint_order", "sigmas"):
        del props[PREFIX + key]
    flip = list(range(17))  # no left/right pairs: not COCO's
    props[PREFIX + "flip_index"] = json.dumps(flip)
    with pytest.raises(ValueError, match="flip_index differ"):
        _ = ModelMeta.from_props(props).keypoints


def test_metadata_from_a_newer_exporter_is_refused_with_the_fix():
    props = ModelMeta.for_dataset("coco").to_props()
    props[PREFIX + "format_version"] = json.dumps(FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="update higherhrnet-trt"):
        ModelMeta.from_props(props)


@pytest.mark.parametrize("field,value,message", [
    ("flip_index", [1, 2, 0, 3, 4], "not a pairing"),
    ("joint_order", [0, 0, 1, 2, 3], "not an order"),
    ("sigmas", [0.05, 0.03], "positive values"),
    ("skeleton", [[0, 7]], "outside 0..4"),
])
def test_inconsistent_keypoint_metadata_is_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        _ = ModelMeta(**{**HAND5, field: value}).keypoints


def test_pipeline_decodes_with_the_keypoint_set_the_file_carries():
    """Pipeline reads the joint order from the metadata: a model file whose metadata gives a
    different parser order than COCO's gets a DecodeConfig with that order."""
    from higherhrnet_trt.runtime.poses import decode_config_for

    coco = ModelMeta.for_dataset("coco")
    custom = ModelMeta.for_dataset("coco")
    custom.joint_order = list(range(17))
    assert decode_config_for(coco, None).joint_order == tuple(coco.joint_order)
    assert decode_config_for(custom, None).joint_order == tuple(range(17))
