"""The operator docs are valid reStructuredText (what PyPI and Sphinx
render); a broken table or heading fails here, not on the web."""

import pathlib

import docutils.frontend
import docutils.parsers.rst
import docutils.utils
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / 'README.rst', *ROOT.glob('doc/*.rst'),
               *ROOT.glob('devstack/*.rst')])


@pytest.mark.parametrize('path', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_document_renders_without_warnings(path):
    problems = []

    def collect(message):
        if message['level'] >= docutils.utils.Reporter.WARNING_LEVEL:
            problems.append(message.astext())

    document = docutils.utils.new_document(
        str(path), docutils.frontend.get_default_settings(
            docutils.parsers.rst.Parser))
    document.reporter.attach_observer(collect)
    document.reporter.report_level = 5
    docutils.parsers.rst.Parser().parse(path.read_text(), document)
    assert problems == []
