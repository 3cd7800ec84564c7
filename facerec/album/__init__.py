"""Album batch recognition: scan folders of photos, match faces, group unknown faces, report."""
