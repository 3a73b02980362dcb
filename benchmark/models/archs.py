"""Tiny timm entry points for the micro zoo that timm itself cannot shrink through kwargs.

timm's mixer entry points hard-code `patch_size`, so a 16 px MLP-Mixer or ResMLP needs its own
registered name. Registered the timm way (`register_model`, `build_model_with_cfg`,
`generate_default_cfgs`), they load local weights through `pretrained_cfg_overlay=dict(file=...)`
exactly as any timm model does. Importing this module registers them.
"""
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.mlp_mixer import Affine, MlpMixer, ResBlock


def _cfg(**kwargs) -> dict:
    return {
        "url": "", "num_classes": 10, "input_size": (1, 16, 16), "pool_size": None,
        "crop_pct": 1.0, "interpolation": "bilinear", "fixed_input_size": True,
        "mean": (0.5,), "std": (0.5,), "first_conv": "stem.proj", "classifier": "head",
        **kwargs,
    }


# register_model reads this module-level name to attach each entry point's default config.
default_cfgs = generate_default_cfgs({
    "micro_mixer.untrained": _cfg(),
    "micro_resmlp.untrained": _cfg(),
})


def _create(variant: str, pretrained: bool, **kwargs) -> MlpMixer:
    size = dict(img_size=16, in_chans=1, num_classes=10, patch_size=4, num_blocks=4, embed_dim=128)
    return build_model_with_cfg(MlpMixer, variant, pretrained, **{**size, **kwargs})


@register_model
def micro_mixer(pretrained: bool = False, **kwargs) -> MlpMixer:
    """MLP-Mixer at 16 px: 4x4 patches, 4 blocks, width 128."""
    return _create("micro_mixer", pretrained, **kwargs)


@register_model
def micro_resmlp(pretrained: bool = False, **kwargs) -> MlpMixer:
    """ResMLP at 16 px: MlpMixer with residual affine blocks, as timm's resmlp_* entry points."""
    return _create("micro_resmlp", pretrained, **{"block_layer": ResBlock, "norm_layer": Affine,
                                                  "mlp_ratio": 4, **kwargs})
