"""The tables the tools write: Markdown to read (and paste into docs), CSV for spreadsheets."""
import csv


def format_cell(value, decimals=4):
    return f'{value:.{decimals}f}' if isinstance(value, float) else str(value)


def markdown_table(header, rows, decimals=4):
    """A Markdown table: float cells with ``decimals`` places, other cells as ``str`` writes them (format
    cells yourself where columns need different precision)."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(format_cell(value, decimals) for value in row) + ' |' for row in rows]
    return '\n'.join(lines)


def write_csv(path, header, rows):
    with open(path, 'w', newline='') as file:
        csv.writer(file).writerows([header, *rows])
