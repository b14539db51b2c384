from dataclasses import dataclass, field

import pytest

from speechrep.config import from_dict, load_config, parse_overrides, to_dict


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    steps: int = 10
    optim: Inner = field(default_factory=Inner)
    layers: tuple[int, ...] = (4, 8, 12)


def test_from_dict_fills_nested_and_coerces():
    cfg = from_dict(Outer, {"steps": 3, "optim": {"lr": 1}, "layers": [1, 2]})
    assert cfg.steps == 3 and cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.layers == (1, 2) and cfg.optim.betas == (0.9, 0.999)
    assert to_dict(cfg)["layers"] == [1, 2]


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['stpes'\].*steps"):
        from_dict(Outer, {"stpes": 3})
    with pytest.raises(ValueError, match=r"optim: unknown key\(s\) \['learning_rate'\]"):
        from_dict(Outer, {"optim": {"learning_rate": 3}})


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\noptim:\n  lr: 0.5\n")
    cfg = load_config(Outer, path, ["optim.lr=0.25", "name=abc"])
    assert (cfg.steps, cfg.optim.lr, cfg.name) == (5, 0.25, "abc")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["novalue"])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(Outer, tmp_path / "missing.yaml")
