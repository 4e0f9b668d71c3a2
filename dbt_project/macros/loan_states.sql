{#- The loan states of kpis.md, as SQL expressions over a loan-tape row. Every
    model that needs them calls these, so "active" and the DPD buckets have one
    definition. -#}

{#- Active: not Complete, not Written Off, and principal still outstanding. -#}
{% macro is_active_loan(loan_status='loan_status', outstanding_principal='outstanding_principal') -%}
    ({{ loan_status }} not in ('Complete', 'Written Off') and {{ outstanding_principal }} > 0)
{%- endmacro %}

{#- The roll-rate bucket of a loan in a snapshot. `written_off` wins over
    everything (a written-off loan also has outstanding 0 and often DPD >= 180);
    then `paid_off` for Complete or fully repaid loans; active loans by DPD.
    A loan absent from a snapshot is `paid_off` too: callers coalesce to it. -#}
{% macro dpd_bucket(loan_status='loan_status', outstanding_principal='outstanding_principal', days_past_due='days_past_due') -%}
    case
        when {{ loan_status }} = 'Written Off' then 'written_off'
        when not {{ abaco.is_active_loan(loan_status, outstanding_principal) }} then 'paid_off'
        when {{ days_past_due }} >= 180 then '180+'
        when {{ days_past_due }} >= 90 then '90-179'
        when {{ days_past_due }} >= 60 then '60-89'
        when {{ days_past_due }} >= 30 then '30-59'
        when {{ days_past_due }} >= 1 then '1-29'
        else 'current'
    end
{%- endmacro %}
