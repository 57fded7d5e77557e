"""raynas.pipeline"""
