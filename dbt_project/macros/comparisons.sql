{#- True when two figures that must be the same are not: one NULL and the other
    not, or further apart than 1e-9 relative to the reference value. Used by the
    singular tests that prove a department mart repeats a KPI mart's figure;
    the copies are exact, the tolerance only absorbs double rounding in sums
    that are rebuilt. -#}
{% macro values_differ(value, reference) -%}
    (({{ value }} is null) <> ({{ reference }} is null)
     or abs(cast({{ value }} as {{ abaco.float_type() }}) - cast({{ reference }} as {{ abaco.float_type() }}))
        > 1e-9 * (1 + abs(cast({{ reference }} as {{ abaco.float_type() }}))))
{%- endmacro %}
