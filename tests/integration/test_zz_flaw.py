import sys
sys.path.insert(0, "/work/main/tests/integration")
from test_writer_safe_mode import *  # noqa
from test_writer_safe_mode import prepared, server, writer  # noqa

def test_flaw(server, writer):
    writer.apply([user(1, "w"), user(2, "v"), user(3, "z")], cp(1))
    # Source: 1 held v, renamed (3 changed in between), released v to w, 2 took v.
    writer.apply([user(1, "v", "n"), user(3, "z", "n"), user(1, "w"), user(2, "v")], cp(2), safe_mode=True)
    assert emails(server) == {1: "w", 2: "v", 3: "z"}
