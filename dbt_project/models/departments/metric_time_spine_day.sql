{#- The daily calendar dbt's semantic layer requires before it parses metric
    definitions (models/marts/_metric_store.yml, models/departments/_metric_store.yml):
    MetricFlow joins time dimensions to it. A fixed range, 2015-01-01 .. 2040-12-31,
    covers every tape the platform will see.

    Built from a cross join of digits rather than dbt's date_spine: date_spine
    runs a query while it compiles, and the BigQuery/Snowflake targets must
    compile offline (abaco_assets_tests/deploy/test_dbt_targets.py). -#}
{%- set first_day = modules.datetime.date(2015, 1, 1) %}
{%- set last_day = modules.datetime.date(2040, 12, 31) %}
{%- set day_count = (last_day - first_day).days + 1 %}

with digits as (
    {%- for digit in range(10) %}
    select {{ digit }} as digit {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

day_offsets as (
    select
        ones.digit + 10 * tens.digit + 100 * hundreds.digit + 1000 * thousands.digit
            + 10000 * ten_thousands.digit as day_offset
    from digits as ones
    cross join digits as tens
    cross join digits as hundreds
    cross join digits as thousands
    cross join digits as ten_thousands
)

{%- set first_day_literal = "cast('" ~ first_day.isoformat() ~ "' as date)" %}

select cast({{ dbt.dateadd('day', 'day_offset', first_day_literal) }} as date) as date_day
from day_offsets
where day_offset < {{ day_count }}
