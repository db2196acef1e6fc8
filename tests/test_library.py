"""The science modules are the chapters' ``#@save`` cells (asvae_lib/book/library.py): a module
edited apart from its chapter, or a chapter edited without ``make library``, fails here."""
import shutil

from asvae_lib.book import library


def test_every_generated_module_is_its_chapters_cells():
    assert library.differences() == [], "run `make library` (the chapters are the source)"


def test_each_module_comes_from_marked_cells_in_chapter_order():
    saved = [module for chapter in library.chapters() for module, _ in library.saved_cells(chapter)]
    for module in ("gaussians", "kl"):
        assert module in saved, f"no chapter saves asvae_lib/{module}.py"


def test_a_changed_cell_or_a_stale_module_is_found(tmp_path):
    (tmp_path / "chapters").mkdir()
    package = tmp_path / "asvae_lib"
    package.mkdir()
    chapter = tmp_path / "chapters" / "01_why_symmetric.py"
    shutil.copy(library.REPO / "chapters" / chapter.name, chapter)
    assert library.write(package, tmp_path) and library.differences(package, tmp_path) == []
    chapter.write_text(chapter.read_text().replace("return cross_entropy(p, q) - p.entropy()",
                                                   "return cross_entropy(q, p) - q.entropy()"))
    assert library.differences(package, tmp_path) == ["asvae_lib/gaussians.py differs from its cells"]
    (package / "old.py").write_text(library.HEADER.format(sources="#   chapters/00_gone.py\n") + "x = 1\n")
    assert "asvae_lib/old.py is generated but no chapter saves to it" in library.differences(package, tmp_path)
    (package / "trainer.py").write_text('"""hand-written"""\n')
    assert not any("trainer" in line for line in library.differences(package, tmp_path))
