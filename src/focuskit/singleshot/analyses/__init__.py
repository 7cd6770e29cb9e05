"""Pinkard et al.'s analyses of the FCFNN, reproduced scaled down on simulated data
(``focuskit evaluate training-size | generalization | magnitude-vs-phase | saliency |
led-angle``). ``PLOTS[name]`` draws each result's figure."""

from focuskit.singleshot.analyses._pinkard import (
    DEFAULT_ANGLES,
    DEFAULT_PATTERNS,
    PLOTS,
    TARGETS,
    FeatureSet,
    LEDRegion,
    Setup,
    analyze_generalization,
    analyze_led_angle,
    analyze_magnitude_vs_phase,
    analyze_saliency,
    analyze_training_size,
    field_specs,
    field_transmittance,
    led_region,
    render_led_images,
    saliency_map,
    stack_features,
    synthesize_led_pattern,
)

__all__ = [
    "DEFAULT_ANGLES",
    "DEFAULT_PATTERNS",
    "PLOTS",
    "TARGETS",
    "FeatureSet",
    "LEDRegion",
    "Setup",
    "analyze_generalization",
    "analyze_led_angle",
    "analyze_magnitude_vs_phase",
    "analyze_saliency",
    "analyze_training_size",
    "field_specs",
    "field_transmittance",
    "led_region",
    "render_led_images",
    "saliency_map",
    "stack_features",
    "synthesize_led_pattern",
]
