"""Data flows one way: dataset → forget request (a file) → scenario (a LightningDataModule)."""
