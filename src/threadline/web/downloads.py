"""A chart's or report's data handed out as a file: CSV or XLSX, named after the data set."""

from __future__ import annotations

from fastapi.responses import Response

from threadline.analytics import Dataset, dataset_csv, dataset_xlsx

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def dataset_file(data: Dataset, fmt: str) -> Response:
    """`data` as a download in `fmt` (a key of MEDIA)."""
    body: str | bytes = dataset_xlsx(data) if fmt == "xlsx" else dataset_csv(data)
    headers = {"Content-Disposition": f'attachment; filename="{data.name}.{fmt}"'}
    return Response(body, media_type=MEDIA[fmt], headers=headers)
