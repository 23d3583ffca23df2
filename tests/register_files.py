"""Register files for tests: copies of tests/data/register/valid with rows replaced, imported as ``idp import``
does (the integration tests of the import, and the protocols' tests of a register change)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from idp.core.accounts.model import Account, Profile
from idp.core.register.csv_format import FILE_NAMES, read_csv
from idp.core.register.records import ImportReport, Kind
from idp.storage.register import ImportRequest, SqlRegisterImport
from idp.wiring import Services

DATA = Path(__file__).resolve().parent / "data"
#: A pupil of the valid register, at collège ``SCHOOL`` until ``pupil_changes_school`` moves her to ``NEW_SCHOOL``.
PUPIL_INE, SCHOOL, NEW_SCHOOL = "1234567890A", "0690026D", "0750654D"


def register_dir(tmp_path: Path, name: str = "v1", **replace: list[str]) -> Path:
    """A copy of tests/data/register/valid, with whole files replaced (``eleves=[rows…]``)."""
    target = tmp_path / name
    shutil.copytree(DATA / "register" / "valid", target)
    for stem, rows in replace.items():
        path = target / f"{stem}.csv"
        header = path.read_text(encoding="utf-8").splitlines()[0]
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return target


def lines(stem: str) -> list[str]:
    """The data rows of one file of the valid register."""
    return (DATA / "register" / "valid" / f"{stem}.csv").read_text(encoding="utf-8").splitlines()[1:]


def run_import(services: Services, directory: Path, *, kinds: tuple[Kind, ...] = tuple(Kind),
               **options: Any) -> ImportReport:
    """Import the register files of ``directory`` at the services' clock."""
    today = services.clock.now().date()
    paths = {kind: directory / FILE_NAMES[kind] for kind in kinds}
    request = ImportRequest({k: read_csv(p, k, today) for k, p in paths.items()},
                            {k: p.name for k, p in paths.items()}, **options)
    return SqlRegisterImport(services.db, services.settings.register.batch_size).run(request, services.clock.now())


def pupil_moved(tmp_path: Path, name: str, ine: str, uai: str) -> Path:
    """The valid register where pupil ``ine`` now attends school ``uai`` (her parents' links stay)."""
    pupils = []
    for row in lines("eleves"):
        fields = row.split(";")
        if fields[0] == ine:
            fields[1] = uai
        pupils.append(";".join(fields))
    return register_dir(tmp_path, name, eleves=pupils)


def registered_pupil(services: Services, account_factory: Any, tmp_path: Path) -> Account:
    """The valid register imported, and the account of its pupil ``PUPIL_INE`` (at ``SCHOOL``)."""
    assert run_import(services, register_dir(tmp_path)).applied
    pupil: Account = account_factory("Léa", "Dupont", profile=Profile.STUDENT)
    with services.uow() as uow:
        uow.accounts.link_register(pupil.id, student_ines=[PUPIL_INE])
        uow.commit()
    return pupil


def pupil_changes_school(services: Services, tmp_path: Path) -> None:
    """A minute later, a register import where pupil ``PUPIL_INE`` attends ``NEW_SCHOOL``."""
    services.clock.advance(minutes=1)  # type: ignore[attr-defined]
    assert run_import(services, pupil_moved(tmp_path, "moved", PUPIL_INE, NEW_SCHOOL)).applied
