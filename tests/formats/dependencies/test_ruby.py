"""Ruby: Gemfile.lock."""

from __future__ import annotations

import pytest

from .reading import deps_of


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        pytest.param(
            "Gemfile.lock",
            """\
            GIT
              remote: https://github.com/acme/payments.git
              revision: 4b825dc642cb6eb9a060e54bf8d69288fbee4904
              specs:
                payments (2.1.0)
                  faraday (>= 1.0)

            PATH
              remote: engines/admin
              specs:
                admin (0.1.0)

            GEM
              remote: https://rubygems.org/
              specs:
                actionpack (7.0.8)
                  rack (~> 2.0, >= 2.2.4)
                nokogiri (1.15.5-x86_64-linux)
                  racc (~> 1.4)
                rack (2.2.8)
                rails (7.0.8)
                  actionpack (= 7.0.8)

            PLATFORMS
              x86_64-linux

            DEPENDENCIES
              admin!
              payments!
              rails (~> 7.0.8)

            BUNDLED WITH
               2.4.22
            """,
            [
                ("payments", "2.1.0", 5),
                ("actionpack", "7.0.8", 16),
                ("nokogiri", "1.15.5", 18),
                ("rack", "2.2.8", 20),
                ("rails", "7.0.8", 21),
            ],
            id="Gemfile.lock",
        ),
    ],
)
def test_reads_ruby_formats(path: str, text: str, expected: list[tuple[str, str, int]]) -> None:
    assert deps_of(path, text) == expected
