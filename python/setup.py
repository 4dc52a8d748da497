"""Build hook of the `xnai` package: generates the gRPC stubs (`xnai.v1.*_pb2`, `*_pb2_grpc`,
`*.pyi`) from the repository's `proto/proto/xnai/v1/*.proto` with grpcio-tools while the wheel
is built, so the stubs always match the protos and none is committed. The protobuf runtime the
package asks for is the one the generator came with (generated code checks it at import)."""

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def proto_root() -> Path:
    """The folder holding `xnai/v1/*.proto`: $XNAI_PROTO_DIR, else ../proto/proto."""
    env = os.environ.get("XNAI_PROTO_DIR")
    root = Path(env) if env else HERE.parent / "proto" / "proto"
    if not (root / "xnai" / "v1").is_dir():
        sys.exit(f"xnai: no protos at {root}/xnai/v1 (build from the repository, or set XNAI_PROTO_DIR)")
    return root


def generate(out: Path) -> None:
    """Runs protoc (from grpcio-tools) over every proto into `out` (a package root)."""
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    protos = sorted(str(p.relative_to(root)) for p in (root / "xnai" / "v1").glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("xnai: protoc failed on " + " ".join(protos))
    (out / "xnai" / "v1" / "__init__.py").write_text('"""Generated gRPC stubs (xnai.v1)."""\n')


class BuildPyWithStubs(build_py):
    """build_py that also writes the generated stubs into the build tree."""

    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib))


def runtime_requires() -> list:
    try:
        from google.protobuf import __version__ as pb_version

        major, minor = (int(x) for x in pb_version.split(".")[:2])
        protobuf = f"protobuf>={major}.{minor},<{major + 1}"
    except Exception:  # only metadata is being read: any protobuf will do
        protobuf = "protobuf>=4.25"
    return ["grpcio>=1.62", protobuf]


setup(install_requires=runtime_requires(), cmdclass={"build_py": BuildPyWithStubs})
