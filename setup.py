"""Install lpfilter: ``pip install .`` (``[ftp]`` for the FTP virtual printer, ``[test]`` for the tests)."""
from setuptools import find_packages, setup

setup(
    name="lpfilter",
    version="0.1.0",
    description="LPRng-style, printcap-driven print spooler backend",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["lpfilter", "lpfilter.*"]),
    install_requires=["pyparsing>=3.1", "psutil>=5.9"],
    # pyftpdlib runs only `lpfilter virtual-printer --ftp`: an optional extra.
    # setuptools in [test]: a test builds the wheel without build isolation (no network);
    # 70.1 builds wheels without the separate wheel package. pytest-xdist: .ci/run runs
    # the tests in two processes (one took 13-14 minutes, near .ci/run's 15).
    extras_require={"ftp": ["pyftpdlib>=1.5.7"],
                    "test": ["pytest>=7", "hypothesis>=6", "pyftpdlib>=1.5.7",
                             "setuptools>=70.1", "pytest-xdist>=3"],
                    # .ci/run checks the code with these before the tests (pyproject.toml).
                    "lint": ["ruff>=0.17,<0.18", "mypy>=2.4,<2.5", "types-psutil"]},
    entry_points={"console_scripts": ["lpfilter = lpfilter.__main__:main"]},
    data_files=[
        ("share/man/man1", ["man/lpfilter.1"]),
        ("share/man/man5", ["man/lpfilter-printcap.5"]),
        ("share/doc/lpfilter", ["etc/printcap.example"]),
    ],
)
