"""The Embeddings tab's long work: embed, reduce, cluster, profile wells, export, one at a time.

Each job runs a core function of :mod:`napari_hcs.profiles` in a worker thread
(:func:`napari.qt.threading.create_worker`); its ``progress(done, total)``
reaches the progress bar through a :func:`~napari_hcs.widgets.workers.relay_to`
relay and Cancel sets the :class:`threading.Event` it checks. When a job ends
the session is told what changed (new embeddings, clusters), and the
tab's status line says what was made or, in words, why not.
"""

from __future__ import annotations

from ..cancel import Cancelled
from .workers import describe_error, relay_to, worker_call

__all__ = ["EmbeddingJobs", "export_cells"]


def export_cells(project_dir, out, *, format: str, level: str, progress=None, cancel=None):
    """Export the project's cells or well profiles (:func:`napari_hcs.profiles.export.export_project`)."""
    from ..profiles.export import ExportOptions, export_project

    return export_project(project_dir, out, ExportOptions(format=format, level=level, overwrite=True),
                          progress=progress, cancel=cancel)


def _cluster_wells(project_dir, options, *, progress=None, cancel=None):
    from ..profiles.clustering import cluster_wells

    return cluster_wells(project_dir, options=options)


class EmbeddingJobs:
    """Starting, following and finishing the panel's worker jobs (mixed into the panel)."""

    @property
    def is_busy(self) -> bool:
        """True while a job runs."""
        return self._worker is not None

    def _start(self, what: str, function, *args, words: str, **kwargs) -> bool:
        from napari.qt.threading import create_worker

        if self._worker is not None:
            self.status.setText("Wait for the running job to finish, or cancel it.")
            return False
        if self.session.project is None:
            self.status.setText("Open a plate first (Plate tab).")
            return False
        self._cancel.clear()
        self.progress.setRange(0, 0)
        worker = create_worker(worker_call, function, self.session.project.folder, *args,
                               progress=relay_to(self._on_progress), cancel=self._cancel, **kwargs)
        worker.returned.connect(lambda outcome: self._finished(what, outcome))
        worker.errored.connect(lambda error: self._finished(what, (None, error)))
        self._worker = worker
        self._set_running(True)
        self.status.setText(words)
        worker.start()
        return True

    def cancel(self) -> None:
        """Stop the running job; nothing of it is stored."""
        if self._worker is not None:
            self._cancel.set()
            self.status.setText("Cancelling…")

    def _on_progress(self, args: tuple) -> None:
        done, total = (int(v) for v in args[:2])
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))

    def _set_running(self, running: bool) -> None:
        for button in (self.embed_button, self.reduce_button, self.cluster_button, self.profile_button,
                       self.cluster_wells_button, self.export_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _finished(self, what: str, outcome) -> None:
        if self._worker is None:
            return
        self._worker = None
        self._set_running(False)
        result, error = outcome
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if error is not None else 1)
        if error is not None:
            folder = self.session.project.folder if self.session.project is not None else None
            words = "Cancelled: nothing was stored." if isinstance(error, Cancelled) else \
                f"{what.capitalize()} failed: {describe_error(error, folder)}"
            if isinstance(error, NotImplementedError):
                words = f"{what.capitalize()} is not available in this version."
            self.status.setText(words)
        else:
            self.status.setText(getattr(self, f"_after_{what.replace(' ', '_')}")(result))
        self.work_finished.emit(what, error if error is not None else result)

    # -- the jobs -------------------------------------------------------------------------
    def embed(self, source: str | None = None) -> bool:
        """Embed the cells (``cnn`` with the selected model, ``features``, ``pca``, ``autoencoder``)."""
        from ..profiles.cell_embeddings import EmbedRequest, embed_cells

        source = source or self.embed_source.currentData()
        model = self.session.current_model if source == "cnn" else None
        if source == "cnn" and model is None:
            self.status.setText("Select a CNN model first (Train tab) to embed with it.")
            return False
        return self._start("embed", _call_embed, embed_cells, EmbedRequest(source=source, model=model),
                           words=f"Embedding the cells ({source})…")

    def _after_embed(self, embedding) -> str:
        self.session.refresh_embeddings()
        return f"Stored embedding {embedding.name!r}: {len(embedding)} cells x {embedding.dimensions}; reduce it to plot it."

    def reduce(self, name: str | None = None, method: str | None = None) -> bool:
        """Reduce a stored embedding (default: the one chosen under Compute) to 2-D."""
        from ..profiles.reduction import reduce_embedding

        name = name or self.embed_source.currentData()
        method = method or self.reduction.currentData()
        return self._start("reduce", reduce_embedding, name, method=method,
                           words=f"Reducing {name} with {method}…")

    def _after_reduce(self, embedding) -> str:
        self.session.refresh_embeddings()
        self.session.show_embedding(embedding.name, (0, 1))
        self._select_current_source()
        return f"Stored and shown {embedding.name!r} ({len(embedding)} cells)."

    def cluster_options(self):
        """The :class:`~napari_hcs.profiles.clustering.ClusterOptions` chosen."""
        from ..profiles.clustering import ClusterOptions

        return ClusterOptions(method=self.cluster_method.currentData(), k=int(self.k.value()))

    def cluster_cells(self, embedding: str | None = None) -> bool:
        """Cluster the cells on the embedding chosen under Compute (or its 2-D reduction)."""
        from ..profiles.clustering import cluster_cells

        embedding = embedding or self.embed_source.currentData()
        reduction = self.reduction.currentData() if self.on_reduction.isChecked() else None
        options = self.cluster_options()
        return self._start("cluster", cluster_cells, embedding=embedding, reduction=reduction, options=options,
                           words=f"Clustering the cells on {embedding}{'-' + reduction if reduction else ''} "
                                 f"({options.method})…")

    def _after_cluster(self, result) -> str:
        self.session.refresh_clusters()
        self.session.colour_by("cluster")
        self._fill_columns()
        sizes = result.report.sizes_text() if getattr(result, "report", None) is not None else ""
        return f"Clustered the cells: {sizes}. Tick 'Colour by cluster' to see them on the image."

    def profile_wells(self) -> bool:
        """Build the well profiles (median per well, normalised per plate) of the classical features."""
        from ..profiles.well_profiles import build_well_profiles

        return self._start("profile", build_well_profiles, words="Building the well profiles…")

    def _after_profile(self, profiles) -> str:
        return f"Profiled {len(profiles.table)} wells on {len(profiles.features)} features; now cluster them."

    def cluster_wells(self) -> bool:
        """Cluster the well profiles with the method and k chosen; the dendrogram follows."""
        return self._start("cluster wells", _cluster_wells, self.cluster_options(),
                           words="Clustering the wells…")

    def _after_cluster_wells(self, result) -> str:
        self._show_tree()
        if self.dendrogram.tree is None:
            return "Clustered the wells; choose 'hierarchical' to see their dendrogram."
        return f"Clustered {len(self.dendrogram.tree.wells)} wells."

    def export(self, path, *, format: str | None = None, level: str | None = None) -> bool:
        """Export the cells or wells to ``path`` (replaced when it exists)."""
        return self._start("export", export_cells, path, format=format or self.export_format.currentData(),
                           level=level or self.export_level.currentData(), words=f"Exporting to {path}…")

    def _after_export(self, summary) -> str:
        return f"Wrote {summary.rows} rows to {summary.path}."

    def _choose_export(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        from .embedding_panel import EXPORT_SUFFIX

        suffix = EXPORT_SUFFIX[self.export_format.currentData()]
        path, _ = QFileDialog.getSaveFileName(self, "Export", f"cells{suffix}", f"*{suffix}")
        if path:
            self.export(path)


def _call_embed(project_dir, embed_cells, request, *, progress=None, cancel=None):
    return embed_cells(project_dir, request, progress=progress, cancel=cancel)
