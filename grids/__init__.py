"""网格通 (grids): the domain library for grid management and coverage mapping.

No Streamlit here: everything is usable from Python and from ``python -m grids``.
"""

__version__ = "0.1.0"
