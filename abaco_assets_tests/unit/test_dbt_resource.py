"""The dbt resource knows the venv's dbt version without starting dbt a second time per run."""

import importlib.metadata

import dagster_dbt.core.resource as dagster_dbt_resource
import pytest

from abaco_assets.defs.transform.dbt_models import DBT_EXECUTABLE, VenvDbtCliResource, dbt_project


def test_the_version_of_the_venv_dbt_comes_from_the_installed_package(monkeypatch, tmp_path):
    def no_second_dbt(*args, **kwargs):
        raise AssertionError(f"spawned {args[0]}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_second_dbt)
    resource = VenvDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    assert str(resource._cli_version) == importlib.metadata.version("dbt-core")
    # another dbt (not beside this interpreter) is asked, as dagster-dbt does
    elsewhere = tmp_path / "bin" / "dbt"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(DBT_EXECUTABLE)
    other = VenvDbtCliResource(project_dir=dbt_project, dbt_executable=str(elsewhere))
    with pytest.raises(AssertionError, match="spawned"):
        _ = other._cli_version


def test_no_in_process_dbt_adapter_is_opened_for_a_build(monkeypatch, data_dir):
    """dagster-dbt would load the profile, project and macros in-process (~1.3 s) for row counts we never fetch."""
    import dbt.parser.manifest

    def loaded(*args, **kwargs):
        raise AssertionError("an in-process dbt adapter was initialised")

    monkeypatch.setattr(dbt.parser.manifest.ManifestLoader, "load_macros", loaded)
    resource = VenvDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)
    assert resource._initialize_dbt_core_adapter(["build"]) is None
    with pytest.raises(AssertionError, match="in-process"):  # what the parent class would do
        dagster_dbt_resource.DbtCliResource._initialize_dbt_core_adapter(resource, ["build"])
