"""The shared fixture runs the whole chain on a copy of the project."""

from gates.base import Status


def test_whole_chain_passes_on_a_copy_of_the_project(project):
    summary = project.run()
    assert [r.status for r in summary.results] == [Status.PASSED] * len(summary.results)
    assert summary.exit_code == 0
