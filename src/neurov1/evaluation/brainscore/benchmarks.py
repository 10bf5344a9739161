"""The paper's V1 benchmarks (Sec. 3.2): V1 Predictivity and the 22 Marques2020 properties in 7 groups."""

PREDICTIVITY = {
    # Public half of FreemanZiemba2013 (135 stimuli), runnable by everyone with network access.
    "public": "FreemanZiemba2013public.V1-pls",
    # The paper's benchmark: private data, needs Brain-Score credentials.
    "private": "FreemanZiemba2013.V1-pls",
}

# V1 Property = mean over these 7 groups of the mean of each group's benchmarks (Marques et al. 2021).
PROPERTY_GROUPS: dict[str, tuple[str, ...]] = {
    "orientation": (
        "Marques2020_Ringach2002-circular_variance",
        "Marques2020_Ringach2002-or_bandwidth",
        "Marques2020_Ringach2002-orth_pref_ratio",
        "Marques2020_Ringach2002-or_selective",
        "Marques2020_Ringach2002-cv_bandwidth_ratio",
        "Marques2020_Ringach2002-opr_cv_diff",
        "Marques2020_DeValois1982-pref_or",
    ),
    "spatial_frequency": (
        "Marques2020_DeValois1982-peak_sf",
        "Marques2020_Schiller1976-sf_selective",
        "Marques2020_Schiller1976-sf_bandwidth",
    ),
    "response_selectivity": (
        "Marques2020_Ringach2002-modulation_ratio",
        "Marques2020_FreemanZiemba2013-texture_selectivity",
        "Marques2020_FreemanZiemba2013-texture_sparseness",
        "Marques2020_FreemanZiemba2013-texture_variance_ratio",
    ),
    "receptive_field_size": (
        "Marques2020_Cavanaugh2002-grating_summation_field",
        "Marques2020_Cavanaugh2002-surround_diameter",
    ),
    "surround_modulation": ("Marques2020_Cavanaugh2002-surround_suppression_index",),
    "texture_modulation": (
        "Marques2020_FreemanZiemba2013-texture_modulation_index",
        "Marques2020_FreemanZiemba2013-abs_texture_modulation_index",
    ),
    "response_magnitude": (
        "Marques2020_Ringach2002-max_dc",
        "Marques2020_FreemanZiemba2013-max_texture",
        "Marques2020_FreemanZiemba2013-max_noise",
    ),
}
PROPERTY_BENCHMARKS: tuple[str, ...] = tuple(b for group in PROPERTY_GROUPS.values() for b in group)
