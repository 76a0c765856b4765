"""Small verified files in memory: only small ones, bounded in all, least recently used out."""

from bodega.proxy.small_files import SmallFiles


def test_only_files_up_to_the_size_limit_are_kept() -> None:
    files = SmallFiles(max_file_bytes=4, max_total_bytes=100)
    files.keep("small", b"1234")
    files.keep("large", b"12345")
    assert files.get("small") == b"1234"
    assert files.get("large") is None


def test_the_least_recently_used_go_first_past_the_total() -> None:
    files = SmallFiles(max_file_bytes=10, max_total_bytes=10)
    files.keep("a", b"aaaa")
    files.keep("b", b"bbbb")
    assert files.get("a") == b"aaaa"  # now the most recent
    files.keep("c", b"cccc")
    assert files.get("b") is None
    assert files.get("a") == b"aaaa"
    assert files.get("c") == b"cccc"
    assert files.total_bytes == 8


def test_a_dropped_file_is_gone_and_uncounted() -> None:
    files = SmallFiles(max_file_bytes=10, max_total_bytes=10)
    files.keep("a", b"aaaa")
    files.drop("a")
    files.drop("never kept")
    assert files.get("a") is None
    assert files.total_bytes == 0
