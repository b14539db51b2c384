import pytest
import torch

from speechrep.cli import main
from speechrep.config import from_dict, load_yaml
from speechrep.pretrain.methods import METHODS, get_method, init_student_from_teacher
from speechrep.pretrain.run import CONFIG_DIR, load_method_config
from speechrep.upstream.distilhubert import DistilHubertConfig, DistilHubertUpstream
from speechrep.upstream.load import load_upstream


@pytest.mark.parametrize("name", sorted(METHODS))
def test_shipped_config_spells_out_the_defaults(name):
    method = METHODS[name]
    shipped = from_dict(method.config_class, load_yaml(CONFIG_DIR / f"{name}.yaml"), where=name)
    assert shipped == method.config_class()
    tiny = load_method_config(method, "tiny")
    assert tiny != shipped and tiny.model != shipped.model


def test_s3prl_defaults_spot_checks():
    tera, mockingjay = (
        load_method_config(METHODS["tera"]),
        load_method_config(METHODS["mockingjay"]),
    )
    assert (tera.model.hidden_size, tera.model.num_layers, tera.model.num_heads) == (768, 3, 12)
    assert tera.task.mask_frequency == 0.2 and mockingjay.task.mask_frequency == 0.0
    assert (tera.data.batch_size, tera.train.grad_accum, tera.optim.lr) == (8, 4, 2e-4)
    assert mockingjay.model.features.num_features == 240  # fbank 80 + deltas
    assert load_method_config(METHODS["audio_albert"]).model.share_layers
    apc = load_method_config(METHODS["apc"])
    assert (apc.optim.name, apc.optim.lr, apc.task.n_future, apc.train.epochs) == (
        "adam",
        1e-4,
        5,
        100,
    )
    assert load_method_config(METHODS["npc"]).model.vq.codebook_sizes == (64, 64, 64, 64)
    assert load_method_config(METHODS["distilhubert"]).model.teacher_layers == (4, 8, 12)


def test_unknown_method_and_unknown_key_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="known methods: apc, audio_albert"):
        get_method("bert")
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) \['hiden_size'\]; valid keys .*hidden_size"
    ):
        load_method_config(METHODS["tera"], overrides=["model.hiden_size=4"])
    code = main(["pretrain", "bert", "--data", str(tmp_path), "-o", str(tmp_path / "exp")])
    assert code == 1 and "unknown pretraining method 'bert'" in capsys.readouterr().err
    code = main(
        [
            "pretrain",
            "tera",
            "--data",
            str(tmp_path),
            "-o",
            str(tmp_path / "exp"),
            "--set",
            "train.stepz=3",
        ]
    )
    assert code == 1 and "train.stepz" not in capsys.readouterr().err.split("valid keys")[1]


def test_folder_without_audio_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no audio here")
    code = main(
        ["pretrain", "tera", "--data", str(tmp_path), "-o", str(tmp_path / "exp"), "-c", "tiny"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "no readable audio" in err and str(tmp_path) in err
    code = main(
        ["pretrain", "tera", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "exp2")]
    )
    assert code == 1 and "audio data not found" in capsys.readouterr().err
    code = main(
        ["pretrain", "tera", "--data", str(tmp_path), "-o", str(tmp_path / "exp3"), "--resume"]
    )
    assert code == 1 and "nothing to resume" in capsys.readouterr().err


def test_list_shows_the_methods(capsys):
    assert main(["list"]) == 0
    assert (
        "pretraining methods: apc, audio_albert, distilhubert, mockingjay, npc, tera, vq_apc"
        in capsys.readouterr().out
    )


def test_student_starts_from_the_teacher(tiny_teacher):
    teacher = load_upstream(tiny_teacher)
    conv = teacher.config.conv_layers
    student = DistilHubertUpstream(
        DistilHubertConfig(
            conv_layers=conv,
            hidden_size=32,
            ffn_size=64,
            num_heads=4,
            pos_conv_kernel=16,
            pos_conv_groups=4,
            num_prediction_heads=2,
            prediction_size=32,
            teacher_layers=(2, 4),
        )
    )
    copied = init_student_from_teacher(student, teacher)
    assert any(k.startswith("encoder.layers.1.") for k in copied) and not any(
        k.startswith("encoder.layers.2.") for k in copied
    )
    assert not any(k.startswith(("heads.", "encoder.layer_norm")) for k in copied)
    source = teacher.state_dict()
    for key in copied:
        assert torch.equal(student.state_dict()[key], source[key])
    assert not torch.equal(
        student.state_dict()["encoder.layers.0.attention.q_proj.weight"],
        DistilHubertUpstream(student.config).state_dict()[
            "encoder.layers.0.attention.q_proj.weight"
        ],
    )


def test_teacher_of_another_width_is_a_clear_error(tiny_teacher, audio_dir, tmp_path, capsys):
    args = ["pretrain", "distilhubert", "--data", str(audio_dir), "-c", "tiny"]
    args += ["--set", f"task.teacher={tiny_teacher}", "--set", "train.progress=false"]
    code = main([*args, "-o", str(tmp_path / "wide"), "--set", "model.prediction_size=48"])
    err = capsys.readouterr().err
    assert code == 1 and "32 wide; the student predicts 48" in err and "Traceback" not in err
    # twin: the matching width trains
    assert main([*args, "-o", str(tmp_path / "ok"), "--set", "train.total_steps=2"]) == 0
